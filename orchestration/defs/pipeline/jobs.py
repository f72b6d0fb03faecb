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


def steps_config(job: dg.JobDefinition, **values) -> dict:
    """Run config setting `values` (e.g. `full_refresh=True`) for every step of `job` whose
    config has those fields, under the step's own op name, so a renamed asset or a new step
    taking the option cannot leave it behind."""
    ops = {}
    for node in job.graph.node_defs:
        fields = getattr(node.config_schema and node.config_schema.config_type, "fields", None)
        if fields and set(values) <= set(fields):
            ops[node.name] = {"config": dict(values)}
    return {"ops": ops}
