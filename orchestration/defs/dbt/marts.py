"""What the Dagster UI shows for each published mart: row count, preview, distributions."""

from __future__ import annotations

import json

import dagster as dg
import duckdb

# The marts BI tools read (docs/marts.md), with the columns whose distribution is worth seeing.
PUBLISHED_MARTS: dict[str, list[str]] = {
    "customer_identities": ["identifier_type"],
    "customer_profiles": ["customer_type", "buyer_group", "gender", "marketing_consent"],
    "customer_segments": ["rfm_segment", "lifecycle_stage", "value_tier", "engagement_segment"],
    "segment_personas": ["segment_type"],
    "customer_key_merges": [],
    "customer_recommendations": ["rank", "category"],
    "interest_feedback": [],
    "campaign_results": ["variant"],
    "ab_tests": ["metric", "winner"],
    "customer_predictions": ["churn_risk", "note"],
}


def mart_metadata(con: duckdb.DuckDBPyConnection, key: dg.AssetKey) -> dict | None:
    name = key.path[-1]
    if key.path == IDENTITIES:
        return identity_metadata(con)
    if key.path[0] != "marts" or name not in PUBLISHED_MARTS:
        return None
    table = f"marts.{name}"
    rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    preview = con.execute(f"select * from {table} limit 5").fetch_df()
    distributions = {
        column: {
            str(value): count
            for value, count in con.execute(
                f"select {column}, count(*) from {table} group by 1 order by 2 desc, 1 limit 12"
            ).fetchall()
        }
        for column in PUBLISHED_MARTS[name]
    }
    metadata = {
        "dagster/row_count": rows,
        # values as they are: read as numbers, phones would show as 1.20159e+10
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False, disable_numparse=True)),
    }
    if distributions:
        metadata["distributions"] = dg.MetadataValue.json(distributions)
    if name == "customer_predictions":
        metadata.update(prediction_fit_metadata(con))
    return metadata


IDENTITIES = ["identity", "int_identity__customer_identities"]


def identity_metadata(con: duckdb.DuckDBPyConnection) -> dict:
    """Persons, cluster sizes, the largest clusters, merge protection's hits, identifiers
    staging rejected, and the rounds connected components took over how many nodes."""
    identities = "identity.int_identity__customer_identities"
    # identifiers per person, counted once: persons, cluster sizes and the largest read it
    con.execute(
        f"create or replace temp table _cluster_sizes as "
        f"select customer_key, count(*) as n from {identities} group by 1"
    )
    persons, identifiers = con.execute(
        "select count(*), coalesce(sum(n), 0) from _cluster_sizes"
    ).fetchone()
    sizes = con.execute(
        """
        select case when n = 1 then '1' when n = 2 then '2' when n <= 5 then '3-5'
                    when n <= 10 then '6-10' when n <= 50 then '11-50' else '51+' end as bucket,
               count(*) from _cluster_sizes group by 1 order by min(n)
        """
    ).fetchall()
    largest = con.execute(
        f"""
        with top as (select * from _cluster_sizes order by n desc, customer_key limit 5)
        select top.customer_key, top.n as identifiers,
               string_agg(distinct identifier_type, ', ' order by identifier_type) as types
        from top inner join {identities} using (customer_key)
        group by top.customer_key, top.n order by 2 desc, 1
        """
    ).fetchall()
    con.execute("drop table _cluster_sizes")
    guard = con.execute(
        "select rule || ' (' || identifier_type || ')', count(*) "
        "from identity.int_identity__guard_audit group by 1 order by 1"
    ).fetchall()
    rejected = con.execute(
        "select identifier_type || ': ' || problem, count(*) "
        "from identity.int_identity__rejected_identifiers group by 1 order by 1"
    ).fetchall()
    rounds = [
        n
        for (n,) in con.execute(
            "select active_nodes from identity.int_identity__components__rounds order by round"
        ).fetchall()
    ]
    ((full_recompute, recomputed),) = con.execute(
        "select full_recompute, recomputed_nodes from identity.int_identity__components__build"
    ).fetchall()
    return {
        "dagster/row_count": identifiers,
        "persons": persons,
        "cluster_sizes": dg.MetadataValue.json(dict(sizes)),
        "largest_clusters": dg.MetadataValue.json(
            [{"customer_key": k, "identifiers": n, "types": t} for k, n, t in largest]
        ),
        "guard_hits": dg.MetadataValue.json(dict(guard)),
        "rejected_identifiers": dg.MetadataValue.json(dict(rejected)),
        "components_rounds": len(rounds),
        "components_active_nodes_per_round": dg.MetadataValue.json(rounds),
        "components_recomputed": "all nodes" if full_recompute else f"{recomputed:,} nodes",
    }


def prediction_fit_metadata(con: duckdb.DuckDBPyConnection) -> dict:
    """The purchase and spend models' parameters, convergence and fit time."""
    (fit,) = con.execute(
        "select any_value(fit) from intermediate.int_customers__predictions"
    ).fetchone()
    if fit is None:
        return {"fit": "no buyers, nothing fitted"}
    fit = json.loads(fit)
    return {
        "fit_seconds": fit["seconds"],
        "converged": fit["converged"],
        "buyers": fit["buyers"],
        "repeat_buyers": fit["repeat_buyers"],
        "purchase_model (BG/NBD)": dg.MetadataValue.json(fit["purchase_parameters"]),
        "spend_model (Gamma-Gamma)": dg.MetadataValue.json(fit["spend_parameters"]),
        "why_null": fit["purchase_note"] or fit["spend_note"] or "",
    }
