import duckdb
import networkx as nx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.defs.identity.components import (
    ComponentsDidNotConverge,
    connected_components,
)


def components(n: int, edges: list[tuple[int, int]], **kwargs):
    con = duckdb.connect()
    frame = pd.DataFrame(edges, columns=["a", "b"], dtype="int64")
    con.register("frame", frame)
    con.execute("create table e as select a, b from frame")
    con.execute("create table n as select range as node from range(?)", [n])
    result = connected_components(con, "select a, b from e", "select node from n", "out", **kwargs)
    return result, dict(con.execute("select node, label from out").fetchall())


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 80))
    nodes = st.integers(0, n - 1)
    edges = draw(st.lists(st.tuples(nodes, nodes), max_size=120))
    # long chains and stars over a random order of nodes: the worst cases for propagation
    for _ in range(draw(st.integers(0, 2))):
        order = draw(st.permutations(range(n)))
        if draw(st.booleans()):
            edges += list(zip(order, order[1:], strict=False))
        else:
            edges += [(order[0], other) for other in order[1:]]
    return n, edges


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_same_partition_as_networkx(graph):
    n, edges = graph
    _, labels = components(n, edges)
    reference = nx.Graph()
    reference.add_nodes_from(range(n))
    reference.add_edges_from(edges)
    assert len(labels) == n
    for component in nx.connected_components(reference):
        assert {labels[v] for v in component} == {min(component)}


def test_long_chain_converges_in_logarithmic_rounds():
    n = 100_000
    import random

    order = list(range(n))
    random.Random(7).shuffle(order)
    result, labels = components(n, list(zip(order, order[1:], strict=False)))
    assert set(labels.values()) == {0}
    assert result.rounds <= 40
    assert result.active_nodes_per_round[0] == n


def test_round_limit_fails_loudly():
    with pytest.raises(ComponentsDidNotConverge, match="still unsettled after 2 rounds"):
        components(1000, [(i, i + 1) for i in range(999)], max_rounds=2)
