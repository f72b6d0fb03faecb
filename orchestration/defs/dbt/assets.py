"""The dbt project as Dagster assets: one `dbt build` from staging through identity stitching
to the marts, after the extracts and the erasure step."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.defs.dbt.marts import IDENTITIES, PUBLISHED_MARTS, mart_metadata
from orchestration.defs.dbt.project import dbt_env, dbt_project
from orchestration.resources import WarehouseResource


class CdpTranslator(DagsterDbtTranslator):
    """dbt models are grouped by layer folder (staging, intermediate, marts)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id)
        if node and node["resource_type"] == "model" and len(node["fqn"]) > 2:
            spec = spec.replace_attributes(group_name=node["fqn"][1])
        return spec


# dbt's tests of the raw sources run in the build and stop it when they fail, but are not
# Dagster checks of the raw assets: a blocking check of a raw table would hold the erasure
# step, which reads the raw tables, until dbt ran, while dbt must run after the erasure.
TRANSLATOR = CdpTranslator(
    settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=False)
)


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental staging models from all of raw instead of the rows loaded since
    their last build (the identity state, keys and merges, is kept)."""
    unit_tests: bool = True
    """Run dbt's unit tests, which test the project's SQL on made-up rows, not the data: `cdp
    run` turns them off when the project, its settings and the versions of dbt and DuckDB are
    those of the last publication (orchestration/changes.py)."""


# Assets that get more metadata once dbt is done (it holds the warehouse meanwhile), as an
# observation of the asset: the events of the build itself stream to the UI as dbt goes.
ENRICHED = {dg.AssetKey(IDENTITIES)} | {dg.AssetKey(["marts", name]) for name in PUBLISHED_MARTS}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    name="dbt_build",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    os.environ.update(dbt_env())  # dbt inherits this process's environment
    os.environ["DAGSTER_RUN_ID"] = context.run_id  # issued keys and merges name their run
    # A test runs in the build that holds all its parents: with dbt's default (eager), a
    # build of a subset would also pick a test linking a model to a seed it has not built.
    # Dagster sets its own value when it runs a subset of the checks.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    if not config.unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    built = []
    for event in dbt.cli(args, context=context).stream():
        key = (
            context.asset_key_for_output(event.output_name)
            if isinstance(event, dg.Output)
            else None
        )
        if key in ENRICHED:
            built.append(key)
        yield event
    with warehouse.connect() as con:
        for key in built:
            metadata = mart_metadata(con, key)
            if metadata:
                yield dg.AssetObservation(asset_key=key, metadata=metadata)


def source_keys(graph) -> list[dg.AssetKey]:
    """The assets a build reads: the extracts and the erasure step, everything that is not
    dbt's or after it."""
    return sorted(
        (dg.AssetSelection.all() - dg.AssetSelection.assets(dbt_build).downstream()).resolve(graph)
    )
