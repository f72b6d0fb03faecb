"""What changed since the last publication, so that a run costs what changed.

Every source table the build reads has a signature: its row count and newest `_loaded_at`.
The extractors keep `_loaded_at` on a row read again exactly as it is loaded, so only news
moves a signature. The build has one as well: the dbt project's files, the settings dbt
reads, and "today" (segments move with the date). Publication records them all; the next
`cdp run` rebuilds what depends on a source whose signature moved, everything when the build's
moved, and nothing when none did.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

import dagster as dg
import duckdb

from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.warehouse import quote_ident

BUILD = "build"  # the name the build's own signature is recorded under
DDL = """
create schema if not exists cdp_state;
create table if not exists cdp_state.published_inputs (
    input varchar primary key,
    signature varchar not null,
    run_id varchar not null,
    published_at timestamptz not null
);
"""


def build_signature(settings: Settings) -> str:
    """The dbt project's files, the settings dbt and the publication read, and the date."""
    from orchestration.defs.dbt.project import project_files

    digest = hashlib.sha256()
    for path in project_files():
        digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    # where the data dir is and how much memory dbt may use do not change what it builds
    ignored = {"CDP_DATA_DIR", "CDP_DUCKDB_MEMORY_LIMIT"}
    env = {k: v for k, v in settings.dbt_env().items() if k not in ignored}
    facts = {
        "env": env,
        "today": settings.today().isoformat(),
        "publish_pii": settings.publish_pii,
        "cdp": version("cdp"),
    }
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


def _table_signature(con: duckdb.DuckDBPyConnection, key: dg.AssetKey) -> str | None:
    """Row count and newest `_loaded_at` of the table an asset key names (None: no table)."""
    if len(key.path) != 2:
        return None
    schema, table = key.path
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
    con: duckdb.DuckDBPyConnection, sources: list[dg.AssetKey], settings: Settings
) -> dict[str, str]:
    found = {BUILD: build_signature(settings)}
    for key in sources:
        signature = _table_signature(con, key)
        if signature is not None:
            found[key.to_user_string()] = signature
    return found


def changed_sources(
    con: duckdb.DuckDBPyConnection, now: dict[str, str], sources: list[dg.AssetKey]
) -> list[dg.AssetKey] | None:
    """The sources whose signature in `now` moved since the last publication; None (build
    everything) when the build's moved or nothing was published yet."""
    con.execute(DDL)
    published = dict(
        con.execute("select input, signature from cdp_state.published_inputs").fetchall()
    )
    if published.get(BUILD) != now[BUILD]:
        return None
    return [k for k in sources if now.get(k.to_user_string()) != published.get(k.to_user_string())]


def record_publication(con: duckdb.DuckDBPyConnection, inputs: dict[str, str], run_id: str) -> None:
    """The signatures of what the marts just published were built from."""
    con.execute(DDL)
    con.execute("begin transaction")
    con.execute("delete from cdp_state.published_inputs")
    con.executemany(
        "insert into cdp_state.published_inputs values (?, ?, ?, now())",
        [(name, signature, run_id) for name, signature in inputs.items()],
    )
    con.execute("commit")
