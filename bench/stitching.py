"""Connected-components micro-benchmark on an identity-shaped graph.

    python bench/stitching.py --nodes 10000000 [--engines cdp,splink,networkx]

The graph mimics identity data: most persons are small clusters (1-6 identifiers, linked
as stars and short paths), a few are long chains (up to 5,000 identifiers). Node ids are
shuffled so no order helps. The graph is written once to Parquet; each engine then runs in
its own process on the same edges, read from a DuckDB database file as a warehouse holds
them (so its peak RSS is its own, and its tables are written to the file), and gives
node -> label.
The partitions are compared exactly: every engine's labels are mapped to the smallest node
of their component and must agree node by node.

Engines: `cdp` (the dbt model int_identity__components, materialization
`connected_components`, run by dbt in a process of its own, whose peak RSS is the
engine's; the time is dbt's for the model, without dbt's start-up), `splink`
(`cluster_pairwise_predictions_at_threshold` on DuckDB; `pip install -e '.[bench]'`) and
`networkx` (`connected_components`, slow and memory-hungry).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


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


def run_cdp(con: duckdb.DuckDBPyConnection) -> tuple[str, float]:
    """The project's dbt model int_identity__components on these links, in a warehouse of
    its own; timed by dbt (the model's execution, without dbt's start-up)."""
    data_dir = Path(tempfile.mkdtemp(prefix="cdp-stitch-dbt-"))
    con.execute(f"attach '{data_dir}/warehouse.duckdb' as w")
    con.execute("create schema w.identity")
    con.execute(
        "create table w.identity.int_identity__links as "
        "select a, b from g_edges union all select node, node from g_nodes"
    )
    con.execute("detach w")
    project = Path(__file__).resolve().parents[1] / "dbt_project"
    env = {**os.environ, "CDP_DATA_DIR": str(data_dir)}
    built = subprocess.run(
        [str(Path(sys.executable).parent / "cdp-dbt"), "run",
         "--select", "int_identity__components",
         "--project-dir", str(project), "--profiles-dir", str(project),
         "--target-path", str(data_dir / "target"), "--log-path", str(data_dir / "logs")],
        env=env, cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    if built.returncode != 0:
        raise SystemExit(built.stdout[-3000:])
    results = json.loads((data_dir / "target" / "run_results.json").read_text())
    (seconds,) = [r["execution_time"] for r in results["results"]]
    con.execute(f"attach '{data_dir}/warehouse.duckdb' as w (read_only)")
    con.execute("create table labels as select * from w.identity.int_identity__components")
    con.execute("detach w")
    shutil.rmtree(data_dir)
    return "select node, label from labels", seconds


def run_splink(con: duckdb.DuckDBPyConnection) -> str:
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    clusters = cluster_pairwise_predictions_at_threshold(
        nodes=con.table("g_nodes"),
        edges=con.table("g_edges"),
        db_api=DuckDBAPI(connection=con),
        node_id_column_name="node",
        edge_id_column_name_left="a",
        edge_id_column_name_right="b",
    )
    return f"select node, cluster_id as label from {clusters.physical_name}"


def run_networkx(con: duckdb.DuckDBPyConnection) -> str:
    import networkx as nx
    import pyarrow as pa

    graph = nx.Graph()
    graph.add_nodes_from(n for (n,) in con.execute("select node from g_nodes").fetchall())
    for batch in con.sql("select a, b from g_edges").to_arrow_reader(1_000_000):
        pairs = zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
        graph.add_edges_from(pairs)
    nodes, labels = [], []
    for component in nx.connected_components(graph):
        label = min(component)
        nodes.extend(component)
        labels.extend([label] * len(component))
    con.register("nx_labels", pa.table({"node": nodes, "label": labels}))
    return "select node, label from nx_labels"


ENGINES = {"cdp": run_cdp, "splink": run_splink, "networkx": run_networkx}


def run_engine(engine: str, graph: Path, out: Path) -> None:
    """Child process: read the graph, cluster it, write node -> smallest node of its cluster."""
    # a database file, as a warehouse is: every engine reads its input from it and writes its
    # tables to it
    con = duckdb.connect(str(out.with_suffix(".duckdb")))
    con.execute("set preserve_insertion_order = false")
    con.execute(f"create table g_nodes as select * from read_parquet('{graph}/nodes.parquet')")
    con.execute(f"create table g_edges as select * from read_parquet('{graph}/edges.parquet')")
    started = time.perf_counter()
    labels = ENGINES[engine](con)
    seconds = time.perf_counter() - started
    if isinstance(labels, tuple):  # the engine timed itself
        labels, seconds = labels
    con.execute(
        f"copy (select node, min(node) over (partition by label) as label from ({labels})) "
        f"to '{out}' (format parquet)"
    )
    rss = (
        max(  # this process, or dbt's if it ran in one of its own
            resource.getrusage(who).ru_maxrss
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        / 1024**2
    )
    print(f"{seconds:.2f} {rss:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000_000)
    parser.add_argument("--engines", default="cdp,splink")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, graph, out = args.child
        run_engine(engine, Path(graph), Path(out))
        return
    work = Path(tempfile.mkdtemp(prefix="cdp-stitch-"))
    with duckdb.connect() as con:
        build_graph(con, args.nodes)
        con.execute(f"copy g_nodes to '{work}/nodes.parquet' (format parquet)")
        con.execute(f"copy g_edges to '{work}/edges.parquet' (format parquet)")
        edges = con.execute("select count(*) from g_edges").fetchall()[0][0]
    print(f"graph: {args.nodes:,} identifiers, {edges:,} edges\n")
    print("| engine | seconds | peak RSS (GiB) |\n|---|---:|---:|")
    outputs = {}
    for engine in args.engines.split(","):
        out = work / f"{engine}.parquet"
        result = subprocess.run(
            [sys.executable, __file__, "--child", engine, str(work), str(out)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{result.stderr}")
        seconds, rss = result.stdout.split()
        print(f"| {engine} | {float(seconds):.1f} | {float(rss):.2f} |")
        outputs[engine] = out
    with duckdb.connect() as con:
        first, *others = outputs
        for other in others:
            differing = con.execute(
                f"select count(*) from read_parquet('{outputs[first]}') a "
                f"full join read_parquet('{outputs[other]}') b using (node) "
                "where a.label is distinct from b.label"
            ).fetchall()[0][0]
            assert differing == 0, f"{first} and {other} disagree on {differing} identifiers"
            print(f"\n{other}: the same partition as {first}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
