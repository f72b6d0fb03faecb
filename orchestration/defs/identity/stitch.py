"""Identity stitching: from observed identifiers to one stable `customer_key` per person.

1. Nodes: every distinct (identifier_type, identifier_value) in `int_identity__observations`
   gets an integer id.
2. Merge protection (rules.yml): blocklisted values, emails and phones with more distinct
   partners than their limit (placeholders), and devices on which customers of several
   persons logged in (shared) are removed before anything is linked; each removal is written
   to `identity.guard_audit` with its rule.
3. Edges: the identifiers left in one source record are linked (a star per record), and
   connected components (components.py) give the persons.
4. Stable keys: the previous run's identifier → key map is the starting point. Each old key
   goes to the cluster holding most of its identifiers (so a split leaves the old key with
   the largest part); a cluster inheriting several keys keeps the oldest and the others are
   recorded in `customer_key_merges`; a cluster inheriting none gets a key derived from its
   earliest identifier, so a warehouse rebuilt from scratch reproduces the same keys.

All the work is SQL run on the build warehouse; the outputs replace the previous ones in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from orchestration.defs.identity.components import ComponentsResult, connected_components
from orchestration.warehouse import scalar

RULES_PATH = Path(__file__).with_name("rules.yml")
OBSERVATIONS = "identity.int_identity__observations"
PERSON_TYPES = ("customer_id", "email", "phone", "device")  # `order_id` is internal

STATE_DDL = """
create schema if not exists identity;
create table if not exists identity.identifier_keys (
    identifier_type varchar, identifier_value varchar, customer_key varchar,
    first_seen_at timestamptz, last_seen_at timestamptz
);
create table if not exists identity.customer_keys (
    customer_key varchar primary key, created_at timestamptz not null, created_run_id varchar
);
create table if not exists identity.customer_key_merges (
    retired_key varchar not null, surviving_key varchar not null, merged_at timestamptz not null,
    run_id varchar
);
"""


def load_rules(path: Path = RULES_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


@dataclass
class StitchResult:
    components: ComponentsResult
    persons: int
    identifiers: int
    new_keys: int
    merges: int


def _guard(con: duckdb.DuckDBPyConnection, rules: dict) -> None:
    """Fill `_id_guard(node, rule, reason)` with every identifier that must not link."""
    blocked = []
    for kind, rule in (rules.get("blocklist") or {}).items():
        exact = rule.get("exact") or []
        if exact:
            blocked.append(
                f"select node, 'blocklist', 'exact value on the {kind} blocklist' from _id_nodes "
                f"where identifier_type = '{kind}' and list_contains({_sql_list(exact)}, "
                "identifier_value)"
            )
        for pattern in rule.get("patterns") or []:
            quoted = pattern.replace("'", "''")
            blocked.append(
                f"select node, 'blocklist', 'matches {kind} blocklist pattern {quoted}' "
                f"from _id_nodes where identifier_type = '{kind}' "
                f"and regexp_matches(identifier_value, '{quoted}')"
            )
    limits = []
    for kind, partners in (rules.get("limits") or {}).items():
        if not isinstance(partners, dict):
            continue
        for partner, limit in partners.items():
            limits.append(
                f"""
                select m.node, 'limit', '{kind} shared by ' || count(distinct p.node) || ' '
                    || '{partner}s (limit {int(limit)})'
                from _id_members as m
                join _id_members as p on p.record = m.record and p.identifier_type = '{partner}'
                where m.identifier_type = '{kind}'
                group by m.node
                having count(distinct p.node) > {int(limit)}
                """
            )
    union = " union all ".join(blocked + limits) or "select null, null, null where false"
    con.execute(
        f"create or replace temp table _id_guard as "
        f"select node, rule, min(reason) as reason from ({union}) as g(node, rule, reason) "
        f"group by node, rule"
    )
    # Shared devices: cluster persons without any device evidence first, then count how many
    # of those persons logged in on each device.
    con.execute(
        """
        create or replace temp table _id_members_no_device as
        select * from _id_members
        where identifier_type <> 'device' and node not in (select node from _id_guard)
        """
    )
    connected_components(
        con,
        _star_edges_sql("_id_members_no_device"),
        "select node from _id_members_no_device",
        "_id_pass1",
        max_rounds=int(rules.get("max_rounds", 100)),
    )
    max_persons = int((rules.get("limits") or {}).get("device_persons", 1))
    con.execute(
        f"""
        insert into _id_guard
        select d.node, 'shared_device',
               'customers of ' || count(distinct c.label) || ' persons logged in on this device'
        from _id_members as d
        join _id_members as p on p.record = d.record and p.identifier_type = 'customer_id'
        join _id_pass1 as c on c.node = p.node
        where d.identifier_type = 'device' and d.node not in (select node from _id_guard)
        group by d.node
        having count(distinct c.label) > {max_persons}
        """
    )


def _star_edges_sql(members: str) -> str:
    """Link the identifiers of one record: each to the record's smallest node id."""
    return f"""
        select r.a, m.node as b
        from {members} as m
        join (select record, min(node) as a from {members} group by record) as r using (record)
        where m.node <> r.a
    """


def _assign_keys(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int]:
    """Fill `_id_label_keys(label, customer_key, is_new)` and `_id_merges`; see module doc."""
    con.execute(
        """
        create or replace temp table _id_votes as
        select p.customer_key, c.label, count(*) as n
        from identity.identifier_keys as p
        join _id_current as c using (identifier_type, identifier_value)
        group by all
        """
    )
    con.execute(
        """
        create or replace temp table _id_heirs as
        select v.customer_key, v.label, k.created_at
        from _id_votes as v
        join identity.customer_keys as k using (customer_key)
        qualify row_number() over (partition by v.customer_key order by v.n desc, v.label) = 1
        """
    )
    con.execute(
        """
        create or replace temp table _id_survivors as
        select label, customer_key from _id_heirs
        qualify row_number() over (partition by label order by created_at, customer_key) = 1
        """
    )
    con.execute(
        """
        create or replace temp table _id_merges as
        select h.customer_key as retired_key, s.customer_key as surviving_key
        from _id_heirs as h join _id_survivors as s using (label)
        where h.customer_key <> s.customer_key
        """
    )
    # Persons with no inherited key: derived from the earliest identifier, which a rebuild from
    # scratch finds again. A clash with a key in use (after a split) salts it with the label.
    con.execute(
        """
        create or replace temp table _id_fresh as
        with earliest as (
            select label, identifier_type || ':' || identifier_value as first_identifier
            from _id_current
            where identifier_type <> 'order_id'
              and label not in (select label from _id_survivors)
            qualify row_number() over (
                partition by label
                order by first_seen_at nulls last, identifier_type, identifier_value
            ) = 1
        ),
        derived as (
            select label, first_identifier,
                   'cus_' || substr(md5(first_identifier), 1, 16) as customer_key
            from earliest
        )
        select d.label,
               case when k.customer_key is null then d.customer_key
                    else 'cus_' || substr(md5(d.first_identifier || '#' || d.label), 1, 16)
               end as customer_key
        from derived as d
        left join identity.customer_keys as k using (customer_key)
        """
    )
    con.execute(
        """
        create or replace temp table _id_label_keys as
        select label, customer_key, false as is_new from _id_survivors
        union all
        select label, customer_key, true from _id_fresh
        """
    )
    fresh = scalar(con, "select count(*) from _id_fresh")
    merges = scalar(con, "select count(*) from _id_merges")
    return fresh, merges


def stitch(con: duckdb.DuckDBPyConnection, run_id: str, rules: dict | None = None) -> StitchResult:
    rules = rules or load_rules()
    con.execute(STATE_DDL)
    con.execute(
        f"""
        create or replace temp table _id_nodes as
        select row_number() over (order by identifier_type, identifier_value) as node,
               identifier_type, identifier_value,
               min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
        from {OBSERVATIONS}
        group by identifier_type, identifier_value
        """
    )
    con.execute(
        f"""
        create or replace temp table _id_members as
        select distinct o.source || ':' || o.record_id as record, n.node, n.identifier_type
        from {OBSERVATIONS} as o
        join _id_nodes as n using (identifier_type, identifier_value)
        """
    )
    _guard(con, rules)
    con.execute(
        """
        create or replace temp table _id_members_kept as
        select * from _id_members where node not in (select node from _id_guard)
        """
    )
    components = connected_components(
        con,
        _star_edges_sql("_id_members_kept"),
        "select node from _id_members_kept",
        "_id_components",
        max_rounds=int(rules.get("max_rounds", 100)),
    )
    con.execute(
        """
        create or replace temp table _id_current as
        select n.*, c.label
        from _id_nodes as n
        join _id_components as c using (node)
        where c.label in (
            select c2.label from _id_components as c2 join _id_nodes as n2 using (node)
            where n2.identifier_type <> 'order_id'
        )
        """
    )
    fresh, merges = _assign_keys(con, run_id)
    con.execute("begin transaction")
    try:
        con.execute(
            """
            create or replace table identity.identifier_keys as
            select c.identifier_type, c.identifier_value, k.customer_key,
                   c.first_seen_at, c.last_seen_at
            from _id_current as c join _id_label_keys as k using (label)
            """
        )
        con.execute(
            f"""
            create or replace table identity.customer_identities as
            select identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
            from identity.identifier_keys
            where identifier_type in {tuple(PERSON_TYPES)}
            order by customer_key, identifier_type, identifier_value
            """
        )
        con.execute(
            """
            create or replace table identity.order_keys as
            select try_cast(identifier_value as bigint) as order_id, customer_key
            from identity.identifier_keys where identifier_type = 'order_id'
            """
        )
        con.execute(
            "insert into identity.customer_keys "
            "select customer_key, now(), ? from _id_label_keys where is_new",
            [run_id],
        )
        con.execute(
            "insert into identity.customer_key_merges "
            "select retired_key, surviving_key, now(), ? from _id_merges",
            [run_id],
        )
        con.execute(
            """
            create or replace table identity.guard_audit as
            select n.identifier_type, n.identifier_value, g.rule, g.reason,
                   n.first_seen_at, n.last_seen_at
            from _id_guard as g join _id_nodes as n using (node)
            order by g.rule, n.identifier_type, n.identifier_value
            """
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return StitchResult(
        components=components,
        persons=scalar(con, "select count(distinct customer_key) from identity.identifier_keys"),
        identifiers=scalar(con, "select count(*) from identity.customer_identities"),
        new_keys=fresh,
        merges=merges,
    )


def audit(con: duckdb.DuckDBPyConnection) -> dict:
    """Cluster sizes, largest clusters and guard hits, for the Dagster UI."""
    sizes = con.execute(
        """
        with sizes as (
            select customer_key, count(*) as n from identity.customer_identities group by 1
        )
        select case when n = 1 then '1' when n = 2 then '2' when n <= 5 then '3-5'
                    when n <= 10 then '6-10' when n <= 50 then '11-50' else '51+' end as bucket,
               count(*) from sizes group by 1 order by min(n)
        """
    ).fetchall()
    largest = con.execute(
        """
        select customer_key, count(*) as identifiers,
               string_agg(distinct identifier_type, ', ' order by identifier_type) as types
        from identity.customer_identities group by 1 order by 2 desc, 1 limit 5
        """
    ).fetchall()
    guard = con.execute(
        "select rule || ' (' || identifier_type || ')', count(*) from identity.guard_audit "
        "group by 1 order by 1"
    ).fetchall()
    return {
        "cluster_sizes": dict(sizes),
        "largest_clusters": [
            {"customer_key": k, "identifiers": n, "types": t} for k, n, t in largest
        ],
        "guard_hits": dict(guard),
    }
