"""Blocking asset checks on every raw table: its Great Expectations suite and a row-count
collapse guard; freshness of the GA4 export and of the shop database. A failing check stops
everything downstream of its table in the run, so nothing is published. The checks of one
source run as one step."""

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb

from orchestration.defs.quality.validate import (
    SAMPLE_KEYS,
    mark_validated,
    thresholds,
    unvalidated_rows,
    validate_table,
)
from orchestration.resources import WarehouseResource
from orchestration.settings import SEEDS_DIR, load_settings
from orchestration.warehouse import scalar


class Outcome(NamedTuple):
    passed: bool
    metadata: dict
    description: str | None = None


def suite(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data_dir: Path) -> Outcome:
    where, loaded_at = unvalidated_rows(con, table)
    if not scalar(con, f"select count(*) from {table} where {where}"):
        return Outcome(
            True,
            {"rows_validated": 0, "failed_expectations": []},
            "no rows loaded since the suite last passed",  # nothing to do
        )
    passed, metadata = validate_table(con, table, data_dir, where, run_name=run_id)
    if passed:
        mark_validated(con, table, loaded_at, run_id)
    failed = "; ".join(
        f"{f['expectation']} on {f['column']}: {f['unexpected']} unexpected "
        f"({f['unexpected_percent']}%), e.g. {f['sample_keys'][:2]}"
        for f in metadata["failed_expectations"]
    )
    return Outcome(passed, metadata, failed or None)


def row_count(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data_dir: Path) -> Outcome:
    ratio = float(thresholds()["row_count_min_ratio"])
    con.execute(
        "create schema if not exists quality; create table if not exists "
        "quality.row_counts (table_name varchar, run_id varchar, "
        "row_count bigint, counted_at timestamptz)"
    )
    rows = scalar(con, f"select count(*) from {table}")
    previous = scalar(
        con,
        "select row_count from quality.row_counts where table_name = "
        "? order by counted_at desc limit 1",
        [table],
    )
    passed = previous is None or rows >= ratio * previous
    if passed:  # a collapsed count must not become the next baseline
        con.execute("insert into quality.row_counts values (?, ?, ?, now())", [table, run_id, rows])
    return Outcome(
        passed,
        {"rows": rows, "previous_rows": previous, "min_ratio": ratio},
        None
        if passed
        else f"{table} has {rows} rows, below {ratio:.0%} of the {previous} of the last run",
    )


def _today() -> dt.date:
    return load_settings().today()


def _on_demo_data(uri: str | None) -> bool:
    return uri is None or str(uri).startswith(str(SEEDS_DIR))


def ga4_fresh(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data_dir: Path) -> Outcome:
    limit = int(thresholds()["freshness"]["ga4_max_age_days"])
    newest = scalar(con, f"select max(_export_day) from {table}")
    if _on_demo_data(load_settings().ga4_export_uri):
        return Outcome(True, {"newest_day": str(newest), "note": "not checked on the demo"})
    age = (_today() - newest).days if newest else None
    return Outcome(
        age is not None and age <= limit,
        {"newest_day": str(newest), "age_days": age, "max_age_days": limit},
    )


def shop_fresh(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data_dir: Path) -> Outcome:
    limit = int(thresholds()["freshness"]["shop_max_age_hours"])
    newest = scalar(con, f"select max(updated_at) from {table}")
    if _on_demo_data(load_settings().shop_db_url):
        return Outcome(True, {"newest_update": str(newest), "note": "not checked on the demo"})
    today_end = dt.datetime.combine(_today(), dt.time.max, dt.UTC)
    hours = (today_end - newest).total_seconds() / 3600 if newest else None
    return Outcome(
        hours is not None and hours <= limit + 24,
        {"newest_update": str(newest), "age_hours": round(hours or 0, 1), "max_age_hours": limit},
    )


# every raw table's checks by name: (description, function); freshness for two tables
CHECKS = {
    "great_expectations": ("The Great Expectations suite `{table}` (expectations/gx).", suite),
    "row_count_not_collapsed": (
        "Blocks when the table shrank below row_count_min_ratio of the last run.",
        row_count,
    ),
}
FRESHNESS = {
    "raw_ga4.events": (
        "The newest GA4 export day is recent enough (expectations/checks.yml).",
        ga4_fresh,
    ),
    "raw_shop.orders": ("The shop's latest updated_at is recent enough.", shop_fresh),
}


def _source_checks(schema: str) -> dg.AssetChecksDefinition:
    """The checks of one source's raw tables, as one step over one warehouse connection (a
    step and a connection each cost a fixed tenth of a second or so); each is its own check
    in the UI and blocks its own table's downstream."""
    checks = {}
    for table in SAMPLE_KEYS:
        if table.split(".")[0] != schema:
            continue
        named = [(name, text.format(table=table), f) for name, (text, f) in CHECKS.items()]
        if table in FRESHNESS:
            named.append(("fresh", *FRESHNESS[table]))
        for name, description, function in named:
            key = dg.AssetCheckKey(dg.AssetKey(table.split(".")), name)
            spec = dg.AssetCheckSpec(
                name, asset=key.asset_key, description=description, blocking=True
            )
            checks[key] = (spec, table, function)

    @dg.multi_asset_check(
        specs=[spec for spec, _, _ in checks.values()], can_subset=True, name=f"{schema}_checks"
    )
    def run_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        selected = context.selected_asset_check_keys
        with warehouse.connect() as con:
            for key, (_, table, function) in checks.items():
                if key not in selected:
                    continue
                outcome = function(con, table, context.run.run_id, warehouse.path.parent)
                yield dg.AssetCheckResult(
                    asset_key=key.asset_key,
                    check_name=key.name,
                    passed=outcome.passed,
                    metadata=outcome.metadata,
                    description=outcome.description,
                )

    return run_checks


source_checks = [_source_checks(schema) for schema in ("raw_ga4", "raw_sheets", "raw_shop")]
