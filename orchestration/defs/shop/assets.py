import time

import dagster as dg

from orchestration.defs.shop.extract import TABLES, extract_all
from orchestration.errors import EXTRACT_RETRY_POLICY, fail_at_once_on_terminal_errors
from orchestration.resources import ShopDatabaseResource, WarehouseResource
from orchestration.warehouse import table_row_count


class ShopSyncConfig(dg.Config):
    full_refresh: bool = False
    """Reload whole tables (the only way to see rows deleted in the shop)."""
    overlap_minutes: int = 120
    """Re-read this much before the newest loaded change, for transactions committed late."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw_shop", name],
            group_name="shop",
            kinds={"duckdb", "sql"},
            description=f"The shop's `{name}` table, merged on its primary key "
            f"{', '.join(spec.primary_key)}.",
        )
        for name, spec in TABLES.items()
    ],
    can_subset=True,
    name="shop_tables",
    retry_policy=EXTRACT_RETRY_POLICY,
)
def shop_tables(
    context: dg.AssetExecutionContext,
    config: ShopSyncConfig,
    warehouse: WarehouseResource,
    shop_db: ShopDatabaseResource,
):
    import datetime as dt

    selected = [n for n in TABLES if dg.AssetKey(["raw_shop", n]) in context.selected_asset_keys]
    started = time.perf_counter()
    with fail_at_once_on_terminal_errors(), warehouse.connect() as con:
        source = shop_db.source()
        results = extract_all(
            con,
            source,
            selected,
            context.run.run_id,
            full_refresh=config.full_refresh,
            overlap=dt.timedelta(minutes=config.overlap_minutes),
            log=context.log,
        )
        totals = {n: table_row_count(con, f"raw_shop.{n}") for n in selected}
    for name in selected:
        result = results[name]
        yield dg.MaterializeResult(
            asset_key=["raw_shop", name],
            metadata={
                **result["stats"].as_metadata(),
                "dagster/row_count": totals[name],
                "mode": result["mode"],
                "columns_added": ", ".join(result["columns_added"]) or "none",
                "changed_since": result["since"] or "everything",
                "source_table": source.describe(name),
                "dialect": source.engine.dialect.name,
            },
        )
    context.log.info(f"shop extract took {time.perf_counter() - started:.1f}s")
