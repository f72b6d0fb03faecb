import subprocess
from pathlib import Path

import dagster as dg

from orchestration.dbt_child import die_with_parent
from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.dbt.project import DBT_EXECUTABLE, dbt_env, reuse_parse
from orchestration.defs.privacy.access import export_access_requests
from orchestration.defs.privacy.erasure import (
    RAW_IDENTIFIERS,
    erase,
    privacy_salt,
    unknown_requests,
)
from orchestration.defs.privacy.traces import scrub_files
from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR, load_settings


def erasure_target_path() -> Path:
    """dbt's target folder for this step, in the data dir: runs on other data dirs (each with
    its own lock) never write the same compiled files or partial-parse state."""
    settings = load_settings()
    return settings.data_dir / "dbt-target" / settings.engine / "erasure"


def stitch_identity_graph() -> None:
    """Build the identity graph (staging through connected components) from this run's data,
    so a request can be carried out for a person the previous run had not seen yet. The
    nightly dbt build that follows rebuilds it all without the erased persons."""
    reuse_parse(erasure_target_path())
    built = subprocess.run(
        [DBT_EXECUTABLE, "build", "--select", "+int_identity__components",
         "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(erasure_target_path())],
        env=dbt_env(),
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        preexec_fn=die_with_parent,  # armed before dbt starts: a killed run takes it along
    )  # fmt: skip
    if built.returncode != 0:
        raise dg.Failure(
            description="stitching for erasure requests failed: dbt build of the identity "
            "graph did not succeed",
            metadata={"dbt output": dg.MetadataValue.text(built.stdout[-4000:])},
        )


@dg.asset(
    key=["privacy", "erased_identifiers"],
    group_name="privacy",
    kinds={"duckdb", "sql"},
    deps=[table.split(".") for table in RAW_IDENTIFIERS],
    description="Erasure requests carried out before dbt runs: the salted hashes of every "
    "identifier of every erased person, whose raw and quarantined rows are deleted; the dbt "
    "models leave out anything that hashes to one.",
)
def erased_identifiers(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    settings = load_settings()
    salt = privacy_salt(settings.data_dir)
    with warehouse.connect() as con:
        unknown = unknown_requests(con, salt, settings.default_phone_region)
    if unknown:
        context.log.info(
            f"{unknown} erasure request identifier(s) unknown to the last stitching: "
            "stitching this run's data first"
        )
        stitch_identity_graph()
    with warehouse.connect() as con:
        erased = erase(
            con, salt, settings.default_phone_region, context.run_id, stitched_now=bool(unknown)
        )
        recorded = con.execute("select count(*) from privacy.erased_identifiers").fetchone()[0]
    scrubbed = scrub_files(settings.data_dir, erased.identifiers)
    if erased.deleted["persons"]:
        context.log.info(
            f"erasure requests: removed {erased.deleted['persons']} person(s): "
            f"{erased.deleted}; files: {scrubbed}"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": recorded,
            "persons_erased": erased.deleted["persons"],
            "rows_deleted": sum(n for t, n in erased.deleted.items() if t != "persons"),
            "erasure_files_scrubbed": scrubbed["files_scrubbed"],
        }
    )


@dg.asset(
    key=["privacy", "access_exports"],
    group_name="privacy",
    kinds={"duckdb", "json"},
    deps=[["marts", name] for name in PUBLISHED_MARTS],
    description="One JSON file per access request in $CDP_DATA_DIR/privacy/exports/, with "
    "everything held on the stitched person; deleted when the person is erased.",
)
def access_exports(warehouse: WarehouseResource) -> dg.MaterializeResult:
    data_dir = Path(warehouse.data_dir)
    with warehouse.connect() as con:
        counts = export_access_requests(con, data_dir, privacy_salt(data_dir))
    return dg.MaterializeResult(metadata=counts)
