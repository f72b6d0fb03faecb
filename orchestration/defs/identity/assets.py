import time

import dagster as dg

from orchestration.defs.identity.erasure import erase, privacy_salt
from orchestration.defs.identity.stitch import audit, stitch
from orchestration.defs.privacy.traces import scrub_files
from orchestration.resources import WarehouseResource
from orchestration.settings import load_settings


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["identity", "customer_identities"],
            group_name="identity",
            kinds={"duckdb", "sql"},
            description="One row per identifier with the stable customer_key of its person.",
            deps=[
                ["identity", "int_identity__observations"],
                ["identity", "int_identity__rejected_identifiers"],
            ],
        ),
        dg.AssetSpec(
            ["identity", "order_keys"],
            group_name="identity",
            kinds={"duckdb", "sql"},
            description="The person (customer_key) behind every shop order.",
            deps=[["identity", "int_identity__observations"]],
        ),
        dg.AssetSpec(
            ["identity", "customer_key_merges"],
            group_name="identity",
            kinds={"duckdb", "sql"},
            description="Keys retired because their persons merged, with the surviving key.",
            deps=[["identity", "int_identity__observations"]],
        ),
    ],
    name="identity_stitching",
)
def identity_stitching(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    started = time.perf_counter()
    settings = load_settings()
    with warehouse.connect() as con:
        result = stitch(con, context.run_id)
        erased = erase(
            con, privacy_salt(settings.data_dir), settings.default_phone_region, context.run_id
        )
        report = audit(con)
        rejected = dict(
            con.execute(
                "select identifier_type || ': ' || problem, count(*) "
                "from identity.int_identity__rejected_identifiers group by 1 order by 1"
            ).fetchall()
        )
        persons_now, identifiers_now = con.execute(
            "select count(distinct customer_key), count(*) from identity.customer_identities"
        ).fetchall()[0]
        orders_keyed = con.execute("select count(*) from identity.order_keys").fetchall()[0][0]
        merges_total = con.execute("select count(*) from identity.customer_key_merges").fetchall()[
            0
        ][0]
    scrubbed = scrub_files(settings.data_dir, erased.identifiers)
    if erased.deleted["persons"]:
        context.log.info(
            f"erasure requests: removed {erased.deleted['persons']} person(s): "
            f"{erased.deleted}; files: {scrubbed}"
        )
    seconds = time.perf_counter() - started
    context.log.info(
        f"{result.persons} persons from {result.identifiers} identifiers in "
        f"{result.components.rounds} rounds ({seconds:.1f}s); {result.new_keys} new keys, "
        f"{result.merges} merges"
    )
    yield dg.MaterializeResult(
        asset_key=["identity", "customer_identities"],
        metadata={
            "dagster/row_count": identifiers_now,
            "persons": persons_now,
            "new_keys": result.new_keys,
            "components_rounds": result.components.rounds,
            "graph_nodes": result.components.nodes,
            "graph_edges": result.components.edges,
            "cluster_sizes": report["cluster_sizes"],
            "largest_clusters": report["largest_clusters"],
            "guard_hits": report["guard_hits"],
            "rejected_identifiers": rejected,
            "persons_erased": erased.deleted["persons"],
            "erasure_files_scrubbed": scrubbed["files_scrubbed"],
            "seconds": round(seconds, 2),
        },
    )
    yield dg.MaterializeResult(
        asset_key=["identity", "order_keys"],
        metadata={"dagster/row_count": orders_keyed},
    )
    yield dg.MaterializeResult(
        asset_key=["identity", "customer_key_merges"],
        metadata={"dagster/row_count": merges_total, "merges_this_run": result.merges},
    )
