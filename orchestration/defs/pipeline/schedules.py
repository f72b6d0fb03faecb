import hashlib
import json

import dagster as dg
import duckdb

from orchestration.defs.ga4.extract import list_export
from orchestration.defs.pipeline.jobs import nightly
from orchestration.defs.shop.demo import ensure_demo_shop_db
from orchestration.defs.shop.extract import ShopSource, tables_with_news
from orchestration.settings import Settings, load_settings


def default_status(settings: Settings) -> dg.DefaultScheduleStatus:
    """Off unless CDP_SCHEDULES=on (or switched on in the UI): a laptop should not run
    nightly jobs."""
    return (
        dg.DefaultScheduleStatus.RUNNING
        if settings.schedules_on
        else dg.DefaultScheduleStatus.STOPPED
    )


_SETTINGS = load_settings()
_RUNNING = default_status(_SETTINGS)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly,
    cron_schedule=_SETTINGS.nightly_cron,
    execution_timezone=_SETTINGS.timezone,
    default_status=_RUNNING,
)


def sources_with_news(settings: Settings) -> dict[str, str]:
    """Each source asset whose source holds more than the warehouse has loaded (a new, grown
    or re-exported GA4 shard, intraday ones included; shop rows past the loaded ones), with
    what it holds. Reads the sources' listings and newest changes, never their rows."""
    if not settings.warehouse_path.exists():
        return {"raw_ga4/events": "not loaded yet"}
    _, days = list_export(settings.ga4_export_uri, settings.source_timeout_seconds)
    shop = ShopSource(
        settings.shop_db_url or ensure_demo_shop_db(settings.demo_shop_db_path),
        settings.shop_db_schema,
    )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        known = dict(con.execute("select export_day, fingerprint from raw_ga4._shards").fetchall())
        news = {f"raw_shop/{t}": at for t, at in tables_with_news(con, shop).items()}
    grown = [f"{d.shard}:{d.fingerprint}" for d in days if known.get(d.day) != d.fingerprint]
    if grown:
        news["raw_ga4/events"] = ",".join(grown)
    return news


@dg.sensor(
    job=nightly,
    minimum_interval_seconds=_SETTINGS.intraday_minutes * 60,
    default_status=dg.DefaultSensorStatus(_RUNNING.value),
)
def source_changes(context: dg.SensorEvaluationContext):
    """Every CDP_INTRADAY_MINUTES: a run of the sources with news and of everything that
    depends on them, up to the publication, so that profiles are at most one interval behind
    the GA4 export (intraday shards included) and the shop."""
    try:
        news = sources_with_news(load_settings())
    except duckdb.IOException:  # a run holds the warehouse: the next interval sees its result
        return dg.SkipReason("the warehouse is being written by a run")
    if not news:
        return dg.SkipReason("no source holds anything new")
    changed = [dg.AssetKey(name.split("/")) for name in sorted(news)]
    if "not loaded yet" in news.values():
        selection = dg.AssetSelection.all()
    else:
        selection = dg.AssetSelection.assets(*changed).downstream()
    state = json.dumps(news, sort_keys=True)
    return dg.RunRequest(
        run_key=hashlib.sha256(state.encode()).hexdigest()[:32],
        asset_selection=sorted(selection.resolve(context.repository_def.asset_graph)),
        tags={"cdp/trigger": ", ".join(k.to_user_string() for k in changed)},
    )
