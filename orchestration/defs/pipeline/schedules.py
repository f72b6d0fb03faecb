import dagster as dg

from orchestration.defs.ga4.extract import list_export
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
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus(_RUNNING.value),
)
def new_ga4_export_day(context: dg.SensorEvaluationContext):
    """Start a run when the export has a day (or a re-export) not seen before."""
    _, days = list_export(load_settings().ga4_export_uri)
    fingerprints = ",".join(f"{d.shard}:{d.fingerprint}" for d in days[-4:])
    if not days or fingerprints == context.cursor:
        return dg.SkipReason("no new or re-exported GA4 day")
    context.update_cursor(fingerprints)
    return dg.RunRequest(run_key=fingerprints, tags={"cdp/trigger": days[-1].shard})
