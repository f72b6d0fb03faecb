import dagster as dg

# Everything, in dependency order: what `cdp run` executes and what the nightly schedule runs.
cdp_pipeline = dg.define_asset_job(
    "cdp_pipeline",
    selection=dg.AssetSelection.all(),
    description="Extract every source, build staging and marts with dbt, run all checks.",
)
