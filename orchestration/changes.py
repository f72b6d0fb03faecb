"""What changed since the last publication, so that a run costs what changed.

Every source table the build reads has a signature: its row count and newest `_loaded_at`.
The extractors keep `_loaded_at` on a row read again exactly as it is loaded, so only news
moves a signature. The build has one as well: the dbt project's files, the settings dbt
reads, and "today" (segments move with the date). Publication records them all; the next
`cdp run` rebuilds what depends on a source whose signature moved, everything when the build's
moved, and nothing when none did. Sources are named by their asset keys (`raw_shop/orders`).
The definition alone (without the date, with the versions of dbt and DuckDB) is recorded too:
dbt's unit tests, which test the project's SQL and not the data, run only when it moved.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from importlib import metadata

import duckdb

from orchestration.defs.ga4.extract import list_export
from orchestration.defs.sheets.extract import TABS, loaded_digest, read_tabs
from orchestration.defs.shop.demo import ensure_demo_shop_db
from orchestration.defs.shop.extract import ShopSource, tables_with_news
from orchestration.settings import Settings
from orchestration.warehouse import quote_ident

BUILD = "build"  # the name the build's own signature is recorded under
DEFINITION = "definition"  # the build's signature without the date, with dbt's and DuckDB's
TOOLS = ("dbt-core", "dbt-duckdb", "dbt-spark", "duckdb", "pyspark")
DDL = """
create schema if not exists cdp_state;
create table if not exists cdp_state.published_inputs (
    input varchar primary key,
    signature varchar not null,
    run_id varchar not null,
    published_at timestamptz not null
);
"""


def _digest(facts: dict) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _tool_versions() -> dict[str, str]:
    tools = {}
    for name in TOOLS:
        try:
            tools[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tools


def _table_signature(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """Row count and newest `_loaded_at` of a source's table (None: no such table)."""
    schema, _, table = source.partition("/")
    columns = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if not columns:
        return None
    name = f"{quote_ident(schema)}.{quote_ident(table)}"
    if "_loaded_at" in columns:
        [(count, newest)] = con.execute(f"select count(*), max(_loaded_at) from {name}").fetchall()
        return f"{count}|{newest.isoformat() if newest else ''}"
    # a table without load times (the erasure's record) is small: its content is hashed
    [(count, content)] = con.execute(
        f"select count(*), bit_xor(hash(t)) from {name} as t"
    ).fetchall()
    return f"{count}|{content}"


def signatures(
    con: duckdb.DuckDBPyConnection, sources: list[str], settings: Settings
) -> dict[str, str]:
    """Each source's signature, the build's (its definition and the date) and the
    definition's (with the versions of the tools that run its SQL); the project's files are
    read once for both."""
    definition = settings.build_definition()
    found = {
        BUILD: _digest({"definition": definition, "today": settings.today().isoformat()}),
        DEFINITION: _digest({"definition": definition, "tools": _tool_versions()}),
    }
    for source in sources:
        signature = _table_signature(con, source)
        if signature is not None:
            found[source] = signature
    return found


def published_signatures(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The signatures the last publication recorded (none yet: empty); reads only."""
    recorded = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'cdp_state' and table_name = 'published_inputs'"
    ).fetchall()
    if recorded == [(0,)]:
        return {}
    return dict(con.execute("select input, signature from cdp_state.published_inputs").fetchall())


def changed_sources(
    published: dict[str, str], now: dict[str, str], sources: list[str]
) -> list[str] | None:
    """The sources whose signature in `now` moved since the last publication (`published`);
    None (build everything) when the build's moved or nothing was published yet."""
    if published.get(BUILD) != now[BUILD]:
        return None
    return [s for s in sources if now.get(s) != published.get(s)]


def definition_changed(published: dict[str, str], now: dict[str, str]) -> bool:
    """Whether the definition in `now` moved since the last publication (or none was made):
    then dbt's unit tests run in the build. Unchanged, they would test the same SQL on the
    same engine as the build that published, which ran them or skipped them for this reason."""
    return published.get(DEFINITION) != now[DEFINITION]


def record_publication(
    con: duckdb.DuckDBPyConnection,
    sources: dict[str, set[str]],
    built: set[str] | None,
    settings: Settings,
    run_id: str,
) -> str | None:
    """After a publication: record the signatures of what the marts were built from, when the
    run that published them says it. `sources` maps each source to the assets downstream of
    it; `built` is what the run built (None: everything). The record holds when every source
    whose signature moved since the last record had all of its downstream rebuilt by this
    run, and the build's signature moved only if the run rebuilt everything. A run from the
    UI, the schedule or the sensor records as `cdp run` does. Returns why it did not."""
    now = signatures(con, sorted(sources), settings)
    published = published_signatures(con)
    everything = set().union(*sources.values())
    if published.get(BUILD) != now[BUILD] and built is not None and not everything <= built:
        return "the build changed (project, settings or date) and this run rebuilt a part"
    if built is not None:
        for source in sorted(sources):
            if now.get(source) != published.get(source) and not sources[source] <= built:
                return f"{source} changed and this run did not rebuild everything after it"
    _write_record(con, now, run_id)
    return None


def _write_record(con: duckdb.DuckDBPyConnection, inputs: dict[str, str], run_id: str):
    con.execute(DDL)
    con.execute("begin transaction")
    con.execute("delete from cdp_state.published_inputs")
    con.executemany(
        "insert into cdp_state.published_inputs values (?, ?, ?, now())",
        [(name, signature, run_id) for name, signature in inputs.items()],
    )
    con.execute("commit")


def sources_with_news(settings: Settings, *, sheets: bool) -> dict[str, str]:
    """Each source whose source holds more than the warehouse has loaded, with what it holds:
    a GA4 shard whose files differ from the loaded day (intraday ones included), shop rows
    changed past the loaded ones, and with `sheets` a tab whose content differs. Reads the
    sources' listings, newest changes and tabs, never the GA4 files or shop rows."""
    return dict(_news(settings, sheets=sheets))


def _news(settings: Settings, *, sheets: bool) -> Iterator[tuple[str, str]]:
    """The sources with news one by one, the cheapest to ask first: the GA4 export's listing,
    the shop's newest changes, then the Sheets tabs (read whole)."""
    if not settings.warehouse_path.exists():
        yield "raw_ga4/events", "not loaded yet"
        return
    _, days = list_export(settings.ga4_export_uri, settings.source_timeout_seconds)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        known = dict(con.execute("select export_day, fingerprint from raw_ga4._shards").fetchall())
        grown = [f"{d.shard}:{d.fingerprint}" for d in days if known.get(d.day) != d.fingerprint]
        if grown:
            yield "raw_ga4/events", ",".join(grown)
        shop = ShopSource(
            settings.shop_db_url or ensure_demo_shop_db(settings.demo_shop_db_path),
            settings.shop_db_schema,
            settings.source_timeout_seconds,
        )
        yield from ((f"raw_shop/{t}", at) for t, at in tables_with_news(con, shop).items())
        if not sheets:
            return
        tabs = read_tabs(
            settings.sheets_uri,
            list(TABS),
            settings.sheets_api_url,
            os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"),
            timeout=settings.source_timeout_seconds,
        )
        for tab in tabs:
            if loaded_digest(con, tab.name) != tab.digest:
                yield f"raw_sheets/{tab.name}", tab.digest


def nothing_new(settings: Settings) -> bool:
    """Whether the published marts were built from everything the sources hold now: the
    same build, no table changed since the publication, and no source holding more."""
    if not settings.marts_path.exists() or not settings.warehouse_path.exists():
        return False
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        published = published_signatures(con)
        if not published:
            return False
        sources = [name for name in published if name not in (BUILD, DEFINITION)]
        if signatures(con, sources, settings) != published:
            return False
    return next(_news(settings, sheets=True), None) is None
