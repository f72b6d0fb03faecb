import dagster as dg

from orchestration.defs.pipeline.alerts import send_alert


@dg.failure_hook
def alert_on_failure(context: dg.HookContext) -> None:
    """Runs in the failing run itself, so `cdp run` and UI runs alert without a daemon."""
    error = context.op_exception
    send_alert(
        f"cdp: step {context.op.name} failed",
        {
            "run_id": context.run_id,
            "job": context.job_name,
            "step": context.op.name,
            "error": str(error) if error else "unknown",
        },
    )


# Everything, in dependency order: what `cdp run` executes and what the schedule starts.
nightly = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    description="Extract every source, stitch identities, build and check the marts, publish.",
    hooks={alert_on_failure},
)
