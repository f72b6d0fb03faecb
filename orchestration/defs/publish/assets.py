"""Publish the marts for BI tools: a new DuckDB file, then an atomic rename.

Readers only ever open `marts.duckdb` read-only, so they see the previous publication or the
new one in full, never a mix, and never block the nightly writer.
"""

import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.changes import record_publication
from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.identity.normalize import register as register_phone_functions
from orchestration.defs.privacy.erasure import DDL as PRIVACY_DDL
from orchestration.defs.privacy.erasure import privacy_salt
from orchestration.defs.privacy.masking import masked_select
from orchestration.defs.privacy.traces import compact_warehouse
from orchestration.resources import WarehouseResource
from orchestration.settings import load_settings
from orchestration.warehouse import compact_fragmented_tables, replace_durably, scalar
from orchestration.warehouse import connect as connect_warehouse

# The file is written in a format DuckDB 1.4 and later read: BI tools bundle older DuckDB
# releases than ours (Evidence's connector 1.4), and cannot open a file in a newer format.
STORAGE_VERSION = "v1.4.0"

COMPACTIONS_DDL = (
    PRIVACY_DDL
    + """
create table if not exists privacy.compactions (compacted_at timestamptz not null);
"""
)


def publish_marts(
    warehouse_path: Path,
    marts_path: Path,
    quality: list[tuple] = (),
    mask_salt: str | None = None,
) -> dict[str, int]:
    """Copy the marts, and the run's quality in `run_quality`, into `<marts>.new`, flush it
    to disk, then rename it over `marts_path`. With `mask_salt`, personal data is published
    only as salted hashes or nulls (privacy/masking.py)."""
    staging = marts_path.with_name(marts_path.name + ".new")
    staging.unlink(missing_ok=True)
    counts = {}
    with duckdb.connect() as con:
        # BI tools get no row order from SQL anyway. Copied in any order, rows read from a
        # table kept from build to build, between the rows it deleted (the identities' view),
        # are written straight to the file on both threads: the identities 1.1 s instead of
        # 1.4 s at 1M persons, the marts 4.1-4.2 s instead of 4.5-4.7 s
        con.execute("set preserve_insertion_order = false")
        con.execute(f"attach '{staging}' as published (storage_version '{STORAGE_VERSION}')")
        con.execute(f"attach '{warehouse_path}' as warehouse (read_only)")
        for name in PUBLISHED_MARTS:
            select, salts = masked_select(name, f"warehouse.marts.{name}")
            if mask_salt is None:
                select, salts = f"select * from warehouse.marts.{name}", 0
            con.execute(f"create table published.main.{name} as {select}", [mask_salt] * salts)
            counts[name] = scalar(con, f"select count(*) from published.main.{name}")
        con.execute(RUN_QUALITY_DDL)
        if quality:
            con.executemany(
                f"insert into published.main.run_quality values ({', '.join(['?'] * 10)})",
                list(quality),
            )
        con.execute("detach warehouse")
        con.execute("checkpoint published")
        con.execute("detach published")
    replace_durably(staging, marts_path)
    return counts


# docs/marts.md's section on it is written by orchestration/reference.py from RUN_QUALITY_DOC.
RUN_QUALITY_DDL = """
create table published.main.run_quality (
    run_id varchar not null,
    published_at timestamptz not null,
    kind varchar not null,
    subject varchar not null,
    name varchar,
    outcome varchar,
    rows bigint,
    rows_this_run bigint,
    latest_at timestamptz,
    detail varchar
)
"""
RUN_QUALITY_DOC = {
    "run_id": "The Dagster run that published the file; for a check whose asset that run "
    "did not rebuild, the run that last evaluated it.",
    "published_at": "When it was published.",
    "kind": "check (one row per check the run evaluated), quarantine (one row per table and "
    "rule with quarantined rows) or freshness (one row per raw source table).",
    "subject": "The checked asset (marts/customer_profiles), or the source table "
    "(raw_shop.orders).",
    "name": "The check's name, or the quarantine rule; null for freshness.",
    "outcome": "For a check: passed, failed (blocking) or warning; null otherwise.",
    "rows": "Quarantine: rows the table's rule holds in quarantine; freshness: the table's rows.",
    "rows_this_run": "Quarantine: of them, rows quarantined by this run.",
    "latest_at": "Quarantine: the latest rejection; freshness: the latest time in the data "
    "(GA4 event, shop update or event), else the latest load.",
    "detail": "The check's description; for freshness, when the table was last loaded.",
}


# The tag `cdp run` gives its build run: the run that extracted the sources (and checked them).
EXTRACT_RUN_TAG = "cdp/extract_run"


def run_quality(
    context: dg.AssetExecutionContext, warehouse_path: Path, marts_path: Path
) -> list[tuple]:
    """The run's checks, the quarantine by table and rule, and each source table's freshness,
    as the rows of `run_quality`: what the dashboard's data quality page shows, so that it
    never has to open the build warehouse. Counts only: no quarantined record is copied.
    The checks are this run's, its extraction run's, and, for assets neither rebuilt, the
    last evaluation the previous publication carried."""
    now = datetime.now(UTC)
    run_id = context.run_id
    runs = [run_id] + [t for t in [context.run.tags.get(EXTRACT_RUN_TAG)] if t]
    rows = []
    for record in (r for run in runs for r in context.instance.all_logs(run)):
        event = record.dagster_event
        if event is None or event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        check = event.event_specific_data
        outcome = (
            "passed"
            if check.passed
            else "failed"
            if check.severity == dg.AssetCheckSeverity.ERROR
            else "warning"
        )
        subject = check.asset_key.to_user_string()
        rows.append(
            (run_id, now, "check", subject, check.check_name, outcome, None, None, None)
            + (check.description,)
        )
    rows += _checks_not_run(marts_path, {(row[3], row[4]) for row in rows})
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        rows += con.execute(
            """
            select ?, ?, 'quarantine', source || '.' || table_name, rule, null, count(*),
                   count(*) filter (where run_id = ?), max(rejected_at), null
            from quarantine.rejected_rows group by all order by 4, 5
            """,
            [run_id, now, run_id],
        ).fetchall()
        tables = con.execute(
            """
            select table_schema || '.' || table_name,
                   list(column_name) filter (where column_name in
                       ('event_timestamp', 'updated_at', 'occurred_at', '_loaded_at'))
            from information_schema.columns
            where table_schema in ('raw_ga4', 'raw_shop', 'raw_sheets')
              and not starts_with(table_name, '_')
            group by 1 order by 1
            """
        ).fetchall()
        for table, columns in tables:
            rows.append((run_id, now, "freshness", table, *_freshness(con, table, columns)))
    return rows


def _checks_not_run(marts_path: Path, evaluated: set[tuple[str, str]]) -> list[tuple]:
    """The previous publication's rows for the checks not evaluated now, as they were."""
    if not marts_path.exists():
        return []
    with duckdb.connect(str(marts_path), read_only=True) as con:
        previous = con.execute("select * from run_quality where kind = 'check'").fetchall()
    return [row for row in previous if (row[3], row[4]) not in evaluated]


def _freshness(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> tuple:
    """(name, outcome, rows, rows_this_run, latest_at, detail) of one raw table."""
    data_time = (
        "make_timestamp(max(event_timestamp)::bigint)::timestamptz"
        if "event_timestamp" in columns
        else "max(try_cast(updated_at as timestamptz))"
        if "updated_at" in columns
        else "max(try_cast(occurred_at as timestamptz))"
        if "occurred_at" in columns
        else "max(_loaded_at)"
    )
    loaded = "max(_loaded_at)" if "_loaded_at" in columns else "null"
    count, latest, last_loaded = con.execute(
        f"select count(*), {data_time}, {loaded} from {table}"
    ).fetchone()
    detail = f"loaded {last_loaded:%Y-%m-%d %H:%M} UTC" if last_loaded else None
    return None, None, count, None, latest, detail


def run_problems(context: dg.AssetExecutionContext) -> list[str]:
    """Everything in this run that must stop publication: failed steps, failed checks, and
    assets that were planned but not materialized (skipped after a blocking check)."""
    events = [r.dagster_event for r in context.instance.all_logs(context.run_id)]
    events = [e for e in events if e is not None]
    planned, materialized, problems = set(), set(), []
    for event in events:
        kind = event.event_type_value
        if kind == "ASSET_MATERIALIZATION_PLANNED":
            planned.add(event.asset_key)
        elif kind == "ASSET_MATERIALIZATION":
            materialized.add(event.asset_key)
        elif kind == "STEP_FAILURE":
            problems.append(f"step {event.step_key} failed")
        elif kind == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            check = event.event_specific_data
            if check.severity != dg.AssetCheckSeverity.ERROR:
                continue  # a warning is reported, not blocking
            problems.append(f"check {check.asset_key.to_user_string()}:{check.check_name} failed")
    skipped = planned - materialized - {context.asset_key}
    problems += [f"{key.to_user_string()} was not built" for key in sorted(skipped)]
    return problems


@dg.asset(
    key=["published", "marts"],
    group_name="publish",
    kinds={"duckdb"},
    deps=[["marts", name] for name in PUBLISHED_MARTS] + [["privacy", "access_exports"]],
    description="The marts of docs/marts.md in $CDP_DATA_DIR/marts.duckdb, replaced atomically.",
)
def published_marts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    problems = run_problems(context)
    if problems:  # Dagster may still run this step after a subset of its upstream was skipped
        raise dg.Failure(
            description="not published, the run had problems: " + "; ".join(problems),
            allow_retries=False,
        )
    marts_path = Path(warehouse.data_dir) / "marts.duckdb"
    started = time.perf_counter()
    compacted = compact_after_erasure(warehouse.path)
    settings = load_settings()
    mask_salt = None if settings.publish_pii else privacy_salt(Path(warehouse.data_dir))
    quality = run_quality(context, warehouse.path, marts_path)
    counts = publish_marts(warehouse.path, marts_path, quality, mask_salt)
    with connect_warehouse(warehouse.path) as con:
        not_recorded = record_publication(
            con, downstream_of_sources(), _built(context), settings, context.run_id
        )
        # published and recorded already: BI tools and the next run do not wait for it
        fragmented = compact_fragmented_tables(con)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(marts_path)),
            "tables": counts,
            # what `cdp run` compares the sources with, to rebuild only what changed since
            "inputs_recorded": not_recorded or "yes",
            "warehouse_compacted_after_erasure": compacted,
            # deleted rows still stored, dropped from the tables holding more than live ones
            "deleted_rows_dropped": fragmented or "none",
            "personal_data": "published" if settings.publish_pii else "masked",
            "run_quality_rows": len(quality),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


def downstream_of_sources() -> dict[str, set[str]]:
    """Each source a build reads, with the assets after it (sources aside), in the whole
    project: a run of a subset only knows the assets it runs."""
    from orchestration.definitions import defs  # loaded already: its modules are imported
    from orchestration.defs.dbt.assets import source_keys

    graph = defs().resolve_asset_graph()
    sources = source_keys(graph)
    names = {key.to_user_string() for key in sources}
    return {
        key.to_user_string(): {
            k.to_user_string() for k in dg.AssetSelection.assets(key).downstream().resolve(graph)
        }
        - names
        for key in sources
    }


def _built(context: dg.AssetExecutionContext) -> set[str] | None:
    """The assets this run built; None when it ran the whole job (no selection: Dagster
    records an empty one for a job run whole in process)."""
    selection = context.run.asset_selection
    return {key.to_user_string() for key in selection} if selection else None


def compact_after_erasure(warehouse_path: Path) -> bool:
    """Rewrite the warehouse file when erasure deleted rows since it was last rewritten, now
    that the marts were rebuilt without them: until then the bytes of deleted rows, and of
    the replaced marts, stay readable in the file's free blocks. Erasure requests still in
    the sheet are read again each night and deleted again, so each such night rewrites it."""
    with connect_warehouse(warehouse_path) as con:
        con.execute(COMPACTIONS_DDL)
        pending = scalar(
            con,
            "select count(*) from privacy.erasure_log where rows_deleted > 0 "
            "and erased_at > coalesce("
            "(select max(compacted_at) from privacy.compactions), '-infinity'::timestamptz)",
        )
    if not pending:
        return False
    compact_warehouse(warehouse_path, register_phone_functions)
    with connect_warehouse(warehouse_path) as con:
        con.execute("insert into privacy.compactions values (now())")
    return True
