"""Connected components in SQL (DuckDB), on integer node ids.

Min-label propagation with pointer jumping, after FastSV (Zhang, Azad & Hu, 2020): every node
keeps a parent pointer that only ever decreases; each round it takes the smallest grandparent
among its neighbours (aggressive hooking), hands the same value to its parent (stochastic
hooking) and jumps to its own grandparent (shortcutting, "label ← label of label"). Labels
travel along pointer chains, not just one edge per round, so rounds grow like log(n) instead
of with the graph's diameter. After every round, components that can no longer change (a star
whose edges all stay inside it) are set aside, so late rounds only touch the few large or long
components still moving. Every statement is a plain join or aggregate: no recursive CTE whose
intermediate result grows with the path count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from orchestration.warehouse import scalar


class ComponentsDidNotConverge(RuntimeError):
    pass


@dataclass
class ComponentsResult:
    rounds: int
    nodes: int
    edges: int
    active_nodes_per_round: list[int] = field(default_factory=list)


def connected_components(
    con: duckdb.DuckDBPyConnection,
    edges_sql: str,
    nodes_sql: str,
    output: str,
    *,
    max_rounds: int = 100,
) -> ComponentsResult:
    """Write `output(node, label)`: label = the smallest node id of the node's component.

    `edges_sql` yields integer columns (a, b) (direction and duplicates do not matter);
    `nodes_sql` yields column `node` and must include every edge endpoint. Raises
    ComponentsDidNotConverge after `max_rounds` rounds instead of returning a wrong answer.
    """
    con.execute(
        f"""
        create or replace temp table _cc_edges as
        with given as (select a, b from ({edges_sql}) where a <> b)
        select a, b from given
        union all
        select b, a from given
        """
    )
    con.execute(
        f"""
        create or replace temp table _cc_parent as
        select n.node, coalesce(least(n.node, m.first), n.node) as parent
        from (select distinct node from ({nodes_sql})) as n
        left join (select a as node, min(b) as first from _cc_edges group by a) as m
            using (node)
        """
    )
    nodes = scalar(con, "select count(*) from _cc_parent")
    edges = scalar(con, "select count(*) from _cc_edges") // 2  # duplicates count too
    con.execute(f"create or replace table {output} (node bigint, label bigint)")
    result = ComponentsResult(rounds=0, nodes=nodes, edges=edges)
    while True:
        _set_aside_settled(con, output)
        active = scalar(con, "select count(*) from _cc_parent")
        if active == 0:
            return result
        if result.rounds >= max_rounds:
            raise ComponentsDidNotConverge(
                f"connected components: {active} nodes still unsettled after {max_rounds} "
                "rounds; raise identity max_rounds only if the graph is really this deep"
            )
        result.rounds += 1
        result.active_nodes_per_round.append(active)
        _round(con)


def _round(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create or replace temp table _cc_grand as
        select f.node, f.parent, p.parent as grandparent
        from _cc_parent as f
        join _cc_parent as p on f.parent = p.node
        """
    )
    con.execute(
        """
        create or replace temp table _cc_parent as
        with neighbour_min as (
            select e.a as node, min(g.grandparent) as m
            from _cc_edges as e
            join _cc_grand as g on e.b = g.node
            group by e.a
        ),
        hooked as (
            select g.parent as node, min(n.m) as m
            from _cc_grand as g
            join neighbour_min as n using (node)
            group by g.parent
        )
        select
            g.node,
            least(g.grandparent, coalesce(n.m, g.grandparent), coalesce(h.m, g.grandparent))
                as parent
        from _cc_grand as g
        left join neighbour_min as n using (node)
        left join hooked as h using (node)
        """
    )


def _set_aside_settled(con: duckdb.DuckDBPyConnection, output: str) -> None:
    """Move finished components (a star whose edges all stay inside) to `output`."""
    con.execute(
        """
        create or replace temp table _cc_moving as
        select distinct f.parent as label
        from _cc_parent as f
        join _cc_parent as p on f.parent = p.node
        where p.parent <> p.node
        union
        select distinct f.parent
        from _cc_edges as e
        join _cc_parent as f on e.a = f.node
        join _cc_parent as g on e.b = g.node
        where f.parent <> g.parent
        """
    )
    con.execute(
        f"""
        insert into {output}
        select node, parent from _cc_parent
        where parent not in (select label from _cc_moving)
        """
    )
    con.execute(
        """
        create or replace temp table _cc_parent as
        select * from _cc_parent where parent in (select label from _cc_moving)
        """
    )
    con.execute(
        """
        create or replace temp table _cc_edges as
        select e.* from _cc_edges as e semi join _cc_parent as f on e.a = f.node
        """
    )
