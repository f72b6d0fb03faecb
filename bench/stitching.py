"""Connected-components micro-benchmark on an identity-shaped graph.

    python bench/stitching.py --nodes 10000000 [--networkx]

The graph mimics identity data: most persons are small clusters (1-6 identifiers, linked
as stars and short paths), a few are long chains (up to 5,000 identifiers) and mid-size
hubs. Node ids are shuffled so no order helps. Prints wall time, rounds and peak RSS; with
`--networkx`, also checks that networkx finds the same partition (slow and memory-hungry).
"""

from __future__ import annotations

import argparse
import resource
import time

import duckdb

from orchestration.defs.identity.components import connected_components


def build_graph(con: duckdb.DuckDBPyConnection, nodes: int, seed: float = 0.42) -> None:
    """Tables g_nodes(node) and g_edges(a, b) with `nodes` shuffled node ids."""
    con.execute(f"select setseed({seed})")
    chain_nodes = nodes // 20  # 5% of identifiers sit in long chains
    con.execute(
        f"""
        create or replace table g_raw as
        -- small clusters: cluster id and position; sizes 1..6, mostly 2-3
        with small as (
            select i, (i // 3) + (case when i % 7 = 0 then 1 else 0 end) as cluster
            from range({nodes - chain_nodes}) t(i)
        ),
        chains as (
            select {nodes - chain_nodes} + i as i, -1 - (i // 5000) as cluster
            from range({chain_nodes}) t(i)
        )
        select * from small union all select * from chains
        """
    )
    con.execute(
        f"""
        create or replace table g_ids as
        select i, cluster, row_number() over (order by hash(i + {int(seed * 1000)})) - 1 as node
        from g_raw
        """
    )
    con.execute(
        """
        create or replace table g_edges as
        -- path edges inside every cluster, plus stars to the first and the last member in
        -- small clusters, as records that repeat identifiers produce
        select lag(node) over w as a, node as b from g_ids
        window w as (partition by cluster order by i)
        qualify lag(node) over w is not null
        union all
        select first_value(node) over w as a, node as b from g_ids
        where cluster >= 0
        window w as (partition by cluster order by i)
        qualify first_value(node) over w <> node
        union all
        select last_value(node) over w as a, node as b from g_ids
        where cluster >= 0
        window w as (partition by cluster order by i
                     rows between unbounded preceding and unbounded following)
        qualify last_value(node) over w <> node
        """
    )
    con.execute("create or replace table g_nodes as select node from g_ids")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000_000)
    parser.add_argument("--networkx", action="store_true")
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = false")
    build_graph(con, args.nodes)
    edges = con.execute("select count(*) from g_edges").fetchall()[0][0]
    started = time.perf_counter()
    result = connected_components(
        con, "select a, b from g_edges", "select node from g_nodes", "g_labels"
    )
    seconds = time.perf_counter() - started
    components = con.execute("select count(distinct label) from g_labels").fetchall()[0][0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"nodes={args.nodes:,} edges={edges:,} components={components:,} "
        f"rounds={result.rounds} seconds={seconds:.1f} peak_rss_gib={rss:.2f}"
    )
    print("active nodes per round:", result.active_nodes_per_round)
    if args.networkx:
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(range(args.nodes))
        for batch in con.sql("select a, b from g_edges").to_arrow_reader(1_000_000):
            graph.add_edges_from(
                zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
            )
        started = time.perf_counter()
        expected = {min(c): len(c) for c in nx.connected_components(graph)}
        print(f"networkx: {time.perf_counter() - started:.1f}s")
        ours = dict(con.execute("select label, count(*) from g_labels group by 1").fetchall())
        assert ours == expected, "partitions differ"
        print("same partition as networkx")


if __name__ == "__main__":
    main()
