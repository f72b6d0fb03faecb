"""dbt, wired twice around the identity step: `dbt_prepare` builds staging and the identity
inputs, the `identity_stitching` asset clusters them, `dbt_marts` builds the marts on top."""

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

from orchestration.defs.dbt.marts import mart_metadata
from orchestration.defs.dbt.project import dbt_env, dbt_project
from orchestration.resources import WarehouseResource

PREPARE = "path:models/staging path:models/intermediate/identity"
MARTS = (
    "path:models/intermediate/customers path:models/intermediate/campaigns path:models/marts "
    "path:seeds"
)


class CdpTranslator(DagsterDbtTranslator):
    """dbt models are grouped by layer folder (staging, intermediate, marts)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id)
        if node and node["resource_type"] == "model" and len(node["fqn"]) > 2:
            spec = spec.replace_attributes(group_name=node["fqn"][1])
        return spec


TRANSLATOR = CdpTranslator(
    settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
)


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental staging models from all of raw instead of the rows loaded since
    their last build."""


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, full_refresh: bool = False):
    os.environ.update(dbt_env())  # dbt inherits this process's environment
    # A test runs in the build that holds all its parents: with dbt's default (eager), the
    # first build would also pick a test linking a staging model to a seed it has not built
    # yet. Dagster sets its own value when it runs a subset of the checks.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    args = ["build", "--full-refresh"] if full_refresh else ["build"]
    yield from dbt.cli(args, context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=PREPARE,
    name="dbt_prepare",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_prepare(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    yield from _build(context, dbt, config.full_refresh)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=MARTS,
    name="dbt_marts",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # dbt holds the warehouse while it runs: collect its events, then add each mart's row
    # count, preview and distributions once it is done.
    events = list(_build(context, dbt))
    with warehouse.connect() as con:
        for event in events:
            if isinstance(event, dg.Output):
                extra = mart_metadata(con, context.asset_key_for_output(event.output_name))
                if extra:
                    event = event.with_metadata({**event.metadata, **extra})
            yield event
