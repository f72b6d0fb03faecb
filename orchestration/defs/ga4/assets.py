import time
from datetime import datetime

import dagster as dg

from orchestration.defs.ga4.extract import TABLE, sync_export
from orchestration.errors import EXTRACT_RETRY_POLICY, fail_at_once_on_terminal_errors
from orchestration.resources import GA4ExportResource, WarehouseResource
from orchestration.warehouse import table_row_count


class GA4SyncConfig(dg.Config):
    full_refresh: bool = False
    """Drop everything loaded and read the whole export again."""
    reload_days: list[str] = []
    """Export days (YYYYMMDD) to read again even if their files did not change."""


@dg.asset(
    key=["raw_ga4", "events"],
    group_name="ga4",
    kinds={"duckdb", "bigquery"},
    description="GA4 / Firebase BigQuery export events, every field of the export schema kept "
    "(nested ones as STRUCT/LIST; fields Google adds are added to the table). Incremental by "
    "export day: new and re-exported days are (re)loaded, unchanged days are skipped.",
    retry_policy=EXTRACT_RETRY_POLICY,
)
def ga4_events(
    context: dg.AssetExecutionContext,
    config: GA4SyncConfig,
    warehouse: WarehouseResource,
    ga4_export: GA4ExportResource,
) -> dg.MaterializeResult:
    days = {datetime.strptime(d, "%Y%m%d").date() for d in config.reload_days}
    started = time.perf_counter()
    with fail_at_once_on_terminal_errors(), warehouse.connect() as con:
        result = sync_export(
            con,
            ga4_export.uri,
            context.run.run_id,
            full_refresh=config.full_refresh,
            force_days=days,
            log=context.log,
        )
        total = table_row_count(con, TABLE)
    seconds = time.perf_counter() - started
    stats = result["stats"]
    return dg.MaterializeResult(
        metadata={
            **stats.as_metadata(),
            "dagster/row_count": total,
            "days_loaded": ", ".join(result["days_loaded"]) or "none (no new or changed day)",
            "days_unchanged": result["days_unchanged"],
            "newest_day": result["newest_day"],
            "files_by_format": result["files_by_format"],
            # fields no file had before, added to the table (at any depth) by this run
            "columns_added": ", ".join(result["columns_added"]) or "none",
            # consent mode: events exported without a device id, loaded but identifying nobody
            "events_without_user_pseudo_id": result["events_without_user_pseudo_id"],
            "user_pseudo_id_null_share": result["user_pseudo_id_null_share"],
            "seconds": round(seconds, 2),
            "events_per_second": round(stats.rows_read / seconds) if seconds else 0,
            "export_uri": ga4_export.uri,
        }
    )
