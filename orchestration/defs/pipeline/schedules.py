import hashlib
import json

import dagster as dg
import duckdb

from orchestration.changes import sources_with_news
from orchestration.defs.pipeline.jobs import nightly
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
        news = sources_with_news(load_settings(), sheets=False)
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
