"""Consent mode, reported and never blocking: with analytics storage denied, GA4 exports
events without `user_pseudo_id`. They load and count in aggregate activity (staging keeps
them) but identify nobody, since identity needs a device. A day with more of them than
`ga4_max_share_without_user_pseudo_id` (expectations/checks.yml) gives a warning: a consent
banner that stopped asking, or a tag that lost its cookie, shows there first."""

import dagster as dg
import duckdb

from orchestration.defs.quality.validate import thresholds
from orchestration.resources import WarehouseResource
from orchestration.warehouse import scalar


def days_without_device(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Per export day loaded by this run (else the newest day): events, events without
    user_pseudo_id, their share."""
    tables = scalar(
        con,
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw_ga4' and table_name in ('events', '_shards')",
    )
    if tables != 2:
        return []
    days = [
        row[0]
        for row in con.execute(
            "select export_day from raw_ga4._shards where run_id = ? order by 1", [run_id]
        ).fetchall()
    ] or [d for d in [scalar(con, "select max(_export_day) from raw_ga4.events")] if d]
    if not days:
        return []
    rows = con.execute(
        "select _export_day, count(*), count(*) - count(user_pseudo_id) from raw_ga4.events "
        "where _export_day in (select unnest(?::date[])) group by 1 order by 1",
        [days],
    ).fetchall()
    return [
        {
            "day": day.strftime("%Y%m%d"),
            "events": events,
            "without_user_pseudo_id": without,
            "share": round(without / events, 4) if events else 0.0,
        }
        for day, events, without in rows
    ]


def consent_mode_result(days: list[dict], limit: float) -> dg.AssetCheckResult:
    over = [d for d in days if d["share"] > limit]
    events = sum(d["events"] for d in days)
    without = sum(d["without_user_pseudo_id"] for d in days)
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "days": days[-31:],
            "events": events,
            "events_without_user_pseudo_id": without,
            "share_without_user_pseudo_id": round(without / events, 4) if events else 0.0,
            "max_share": limit,
        },
        description=None
        if not over
        else "consent mode: "
        + ", ".join(f"{d['day']} {d['share']:.0%} of events without user_pseudo_id" for d in over)
        + f" (warning above {limit:.0%}; these events count in activity, not in identity)",
    )


@dg.asset_check(
    asset=dg.AssetKey(["raw_ga4", "events"]),
    name="user_pseudo_id_null_share",
    blocking=False,
    description="Warns when a day's share of GA4 events without user_pseudo_id (consent "
    "mode) is above ga4_max_share_without_user_pseudo_id (expectations/checks.yml).",
)
def ga4_user_pseudo_id_null_share(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    limit = float(thresholds()["ga4_max_share_without_user_pseudo_id"])
    with warehouse.connect() as con:
        days = days_without_device(con, context.run.run_id)
    return consent_mode_result(days, limit)
