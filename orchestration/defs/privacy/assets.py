from pathlib import Path

import dagster as dg

from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.identity.erasure import privacy_salt
from orchestration.defs.privacy.access import export_access_requests
from orchestration.resources import WarehouseResource


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
