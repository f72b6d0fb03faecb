"""Blocking asset checks on every raw table: its Great Expectations suite and a row-count
collapse guard; freshness of the GA4 export and of the shop database. A failing check stops
everything downstream in the run, so nothing is published."""

import datetime as dt

import dagster as dg

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


def _suite_check(table: str) -> dg.AssetChecksDefinition:
    schema, name = table.split(".")

    @dg.asset_check(
        asset=dg.AssetKey([schema, name]),
        name="great_expectations",
        blocking=True,
        description=f"The Great Expectations suite `{table}` (expectations/gx).",
    )
    def check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            where, loaded_at = unvalidated_rows(con, table)
            if not scalar(con, f"select count(*) from {table} where {where}"):
                return dg.AssetCheckResult(
                    passed=True,
                    metadata={"rows_validated": 0, "failed_expectations": []},
                    description="no rows loaded since the suite last passed",  # nothing to do
                )
            passed, metadata = validate_table(
                con, table, warehouse.path.parent, where, run_name=context.run.run_id
            )
            if passed:
                mark_validated(con, table, loaded_at, context.run.run_id)
        failed = "; ".join(
            f"{f['expectation']} on {f['column']}: {f['unexpected']} unexpected "
            f"({f['unexpected_percent']}%), e.g. {f['sample_keys'][:2]}"
            for f in metadata["failed_expectations"]
        )
        return dg.AssetCheckResult(passed=passed, metadata=metadata, description=failed or None)

    return check


def _row_count_check(table: str) -> dg.AssetChecksDefinition:
    schema, name = table.split(".")

    @dg.asset_check(
        asset=dg.AssetKey([schema, name]),
        name="row_count_not_collapsed",
        blocking=True,
        description="Blocks when the table shrank below row_count_min_ratio of the last run.",
    )
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        ratio = float(thresholds()["row_count_min_ratio"])
        with warehouse.connect() as con:
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
                con.execute(
                    "insert into quality.row_counts values (?, ?, ?, now())",
                    [table, context.run.run_id, rows],
                )
        return dg.AssetCheckResult(
            passed=passed,
            metadata={"rows": rows, "previous_rows": previous, "min_ratio": ratio},
            description=None
            if passed
            else f"{table} has {rows} rows, below {ratio:.0%} of the {previous} of the last run",
        )

    return check


def _today() -> dt.date:
    return load_settings().today()


def _on_demo_data(uri: str | None) -> bool:
    return uri is None or str(uri).startswith(str(SEEDS_DIR))


@dg.asset_check(
    asset=dg.AssetKey(["raw_ga4", "events"]),
    name="fresh",
    blocking=True,
    description="The newest GA4 export day is recent enough (expectations/checks.yml).",
)
def ga4_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    limit = int(thresholds()["freshness"]["ga4_max_age_days"])
    with warehouse.connect() as con:
        newest = scalar(con, "select max(_export_day) from raw_ga4.events")
    if _on_demo_data(load_settings().ga4_export_uri):
        return dg.AssetCheckResult(
            passed=True, metadata={"newest_day": str(newest), "note": "not checked on the demo"}
        )
    age = (_today() - newest).days if newest else None
    return dg.AssetCheckResult(
        passed=age is not None and age <= limit,
        metadata={"newest_day": str(newest), "age_days": age, "max_age_days": limit},
    )


@dg.asset_check(
    asset=dg.AssetKey(["raw_shop", "orders"]),
    name="fresh",
    blocking=True,
    description="The shop's latest updated_at is recent enough.",
)
def shop_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    limit = int(thresholds()["freshness"]["shop_max_age_hours"])
    with warehouse.connect() as con:
        newest = scalar(con, "select max(updated_at) from raw_shop.orders")
    if _on_demo_data(load_settings().shop_db_url):
        return dg.AssetCheckResult(
            passed=True, metadata={"newest_update": str(newest), "note": "not checked on the demo"}
        )
    today_end = dt.datetime.combine(_today(), dt.time.max, dt.UTC)
    hours = (today_end - newest).total_seconds() / 3600 if newest else None
    return dg.AssetCheckResult(
        passed=hours is not None and hours <= limit + 24,
        metadata={
            "newest_update": str(newest),
            "age_hours": round(hours or 0, 1),
            "max_age_hours": limit,
        },
    )


suite_checks = [_suite_check(table) for table in SAMPLE_KEYS]
row_count_checks = [_row_count_check(table) for table in SAMPLE_KEYS]
