"""Connected components (the dbt materialization `connected_components`) against networkx."""

import random

import duckdb
import networkx as nx
import pandas as pd
import yaml

from orchestration.settings import DBT_PROJECT_DIR

from .identity_dbt import dbt


def components(data_dir, n, edges: list[tuple[int, int]], *dbt_args: str, **variables):
    """Run int_identity__components on nodes 0..n-1 (or these nodes) and these links; return
    the dbt result, node -> label, and the nodes still moving per round."""
    data_dir.mkdir(parents=True, exist_ok=True)
    nodes = range(n) if isinstance(n, int) else n
    links = pd.DataFrame(edges + [(i, i) for i in nodes], columns=["a", "b"], dtype="int64")
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.register("links", links)
        con.execute("create schema if not exists identity")
        con.execute("create or replace table identity.int_identity__links as select * from links")
    settings = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    result = dbt(
        data_dir,
        "run",
        "--select",
        "int_identity__components",
        *dbt_args,
        variables={"identity": {**settings["identity"], **variables}} if variables else None,
    )
    if result.returncode != 0:
        return result, {}, []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        labels = dict(
            con.execute("select node, label from identity.int_identity__components").fetchall()
        )
        rounds = [
            n
            for (n,) in con.execute(
                "select active_nodes from identity.int_identity__components__rounds order by round"
            ).fetchall()
        ]
    return result, labels, rounds


def random_graph(rng: random.Random) -> tuple[int, list[tuple[int, int]]]:
    n = rng.randint(1, 80)
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 120))]
    # long chains and stars over a random order of nodes: the worst cases for propagation
    for _ in range(rng.randint(0, 2)):
        order = rng.sample(range(n), n)
        if rng.random() < 0.5:
            edges += list(zip(order, order[1:], strict=False))
        else:
            edges += [(order[0], other) for other in order[1:]]
    return n, edges


def test_same_partition_as_networkx(tmp_path):
    """300 random graphs side by side, as one graph of disjoint parts: each part's components
    must be exactly networkx's, labelled by their smallest node."""
    rng = random.Random(20261130)
    parts, offset, edges = [], 0, []
    for _ in range(300):
        n, part = random_graph(rng)
        parts.append((offset, n, part))
        edges += [(a + offset, b + offset) for a, b in part]
        offset += n
    result, labels, _ = components(tmp_path, offset, edges)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(labels) == offset
    for start, n, part in parts:
        reference = nx.Graph()
        reference.add_nodes_from(range(start, start + n))
        reference.add_edges_from((a + start, b + start) for a, b in part)
        for component in nx.connected_components(reference):
            assert {labels[v] for v in component} == {min(component)}


def test_long_chain_converges_in_logarithmic_rounds(tmp_path):
    n = 100_000
    order = list(range(n))
    random.Random(7).shuffle(order)
    result, labels, rounds = components(tmp_path, n, list(zip(order, order[1:], strict=False)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert set(labels.values()) == {0} and len(labels) == n
    assert len(rounds) <= 40
    assert rounds[0] == n


def test_round_limit_fails_loudly(tmp_path):
    result, labels, _ = components(tmp_path, 1000, [(i, i + 1) for i in range(999)], max_rounds=2)
    assert result.returncode != 0 and not labels
    assert "still unsettled after 2 rounds" in result.stdout


def test_later_builds_recompute_only_what_changed(tmp_path):
    """300 random graphs, then three rounds of edits to a third of them (links and nodes added
    and removed, parts joined and split): each build equals networkx on the whole graph, and
    recomputes only the components of the edited parts."""
    rng = random.Random(20261201)
    parts = {}
    for i in range(300):
        n, part = random_graph(rng)
        parts[i] = (
            {1000 * i + v for v in range(n)},
            {(1000 * i + a, 1000 * i + b) for a, b in part},
        )

    def whole():
        nodes = set().union(*(nodes for nodes, _ in parts.values()))
        return nodes, set().union(*(edges for _, edges in parts.values()))

    nodes, edges = whole()
    result, labels, _ = components(tmp_path, sorted(nodes), sorted(edges))
    assert result.returncode == 0, result.stdout[-3000:]
    for _ in range(3):
        edited = rng.sample(sorted(parts), 100)
        for i in edited:
            part_nodes, part_edges = parts[i]
            for a, b in rng.sample(sorted(part_edges), min(len(part_edges), rng.randint(0, 5))):
                part_edges.discard((a, b))
            for v in rng.sample(sorted(part_nodes), min(len(part_nodes) - 1, rng.randint(0, 2))):
                part_nodes.discard(v)
                part_edges -= {(a, b) for a, b in part_edges if v in (a, b)}
            part_nodes |= {1000 * i + 900 + rng.randrange(99) for _ in range(rng.randint(0, 2))}
            members = sorted(part_nodes)
            part_edges |= {
                (rng.choice(members), rng.choice(members)) for _ in range(rng.randint(0, 5))
            }
        # a link between two parts joins them; the next round may split them again
        first, second = rng.sample(edited, 2)
        parts[first][1].add((min(parts[first][0]), min(parts[second][0])))
        parts[first][0].add(min(parts[second][0]))
        nodes, edges = whole()
        result, labels, _ = components(tmp_path, sorted(nodes), sorted(edges))
        assert result.returncode == 0, result.stdout[-3000:]
        reference = nx.Graph()
        reference.add_nodes_from(nodes)
        reference.add_edges_from(edges)
        assert len(labels) == len(nodes)
        for component in nx.connected_components(reference):
            assert {labels[v] for v in component} == {min(component)}
        with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
            ((full, recomputed),) = con.execute(
                "select full_recompute, recomputed_nodes "
                "from identity.int_identity__components__build"
            ).fetchall()
        assert not full and 0 < recomputed < len(nodes) / 2
