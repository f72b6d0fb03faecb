"""Publish the marts for BI tools: a new DuckDB file, then an atomic rename.

Readers only ever open `marts.duckdb` read-only, so they see the previous publication or the
new one in full, never a mix, and never block the nightly writer.
"""

import time
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.identity.erasure import DDL as PRIVACY_DDL
from orchestration.defs.identity.normalize import register as register_phone_functions
from orchestration.defs.privacy.traces import compact_warehouse
from orchestration.resources import WarehouseResource
from orchestration.warehouse import connect as connect_warehouse
from orchestration.warehouse import replace_durably, scalar

COMPACTIONS_DDL = (
    PRIVACY_DDL
    + """
create table if not exists privacy.compactions (compacted_at timestamptz not null);
"""
)


def publish_marts(warehouse_path: Path, marts_path: Path) -> dict[str, int]:
    """Copy the marts into `<marts>.new`, flush it to disk, then rename it over `marts_path`."""
    staging = marts_path.with_name(marts_path.name + ".new")
    staging.unlink(missing_ok=True)
    counts = {}
    with duckdb.connect(str(staging)) as con:
        con.execute(f"attach '{warehouse_path}' as warehouse (read_only)")
        for name in PUBLISHED_MARTS:
            con.execute(f"create table main.{name} as select * from warehouse.marts.{name}")
            counts[name] = con.execute(f"select count(*) from main.{name}").fetchall()[0][0]
        con.execute("detach warehouse")
        con.execute("checkpoint")
    replace_durably(staging, marts_path)
    return counts


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
    counts = publish_marts(warehouse.path, marts_path)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(marts_path)),
            "tables": counts,
            "warehouse_compacted_after_erasure": compacted,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


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
