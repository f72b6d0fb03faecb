{#- Connected components of an undirected graph, as a materialization.

    The model's SQL yields integer columns (a, b): a link between two nodes, in either
    direction, duplicates allowed; a row with a = b, or b null, is a node (with or without
    links). The materialized table is (node, label):
    label = the smallest node of the node's component.

    Min-label propagation with pointer jumping, after FastSV (Zhang, Azad & Hu, 2020): every
    node keeps a parent pointer that only ever decreases; each round it takes the smallest
    grandparent among its neighbours (aggressive hooking), hands the same value to its parent
    (stochastic hooking) and jumps to its own grandparent (shortcutting). Labels travel along
    pointer chains, not one edge per round, so rounds grow like log(n), not with the graph's
    diameter. After every round, components that can no longer change (a star whose links all
    stay inside it) are set aside, so late rounds touch only the few components still moving.
    Every statement is a plain join or aggregate, run round after round until nothing moves;
    more than `max_rounds` rounds (config) fails the model instead of returning a wrong answer.

    Run after run, only the components whose links changed are computed again: the links of
    the last build are kept beside the table (`<model>__links`, each link once as
    a <= b, a node without links as (a, a)); the nodes of links added or gone since, and every
    node of the components they belonged to, are the part to recompute. No unchanged link
    leaves that part (both its ends were in one component), so its components are exactly
    those of the whole graph, and every other component is kept as it was. Node numbers must
    therefore mean the same identifier from run to run. A full refresh computes everything.
    With `lists_pending_persons` (config), the nodes recomputed are listed for the persons
    after the components (macros/identity/restitch.sql).
-#}

{% materialization connected_components, default %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set max_rounds = config.get('max_rounds', 100) | int -%}
  {%- set work = {} -%}
  {%- for part in ['input', 'edges', 'parent', 'grand', 'moving', 'settled', 'links',
                   'changed', 'touched', 'result'] -%}
    {%- do work.update({part: cdp.cc_work_relation(part)}) -%}
  {%- endfor -%}
  {%- for relation in work.values() -%}{{ drop_relation_if_exists(relation) }}{%- endfor -%}
  {%- set kept_links = api.Relation.create(database=this.database, schema=this.schema,
        identifier=this.identifier ~ '__links', type='table') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set previous_links = adapter.get_relation(database=this.database, schema=this.schema,
        identifier=kept_links.identifier) -%}
  {%- set incremental = existing_relation is not none and previous_links is not none
        and not should_full_refresh() -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {{ cdp.cc_replace(work.links, 'select distinct least(a, coalesce(b, a)) as a, '
        ~ 'greatest(a, coalesce(b, a)) as b from (' ~ sql ~ ') as given') }}
  {%- endcall %}
  {%- if incremental -%}
    {#- the links added or gone (one join of the two sets instead of two differences), then
        the nodes to recompute: their ends, and the components they were in -#}
    {% do run_query(cdp.cc_replace(work.changed, '
        select coalesce(now.a, before.a) as a, coalesce(now.b, before.b) as b,
            before.a is null as added
        from ' ~ work.links ~ ' as now
        full join ' ~ previous_links ~ ' as before on now.a = before.a and now.b = before.b
        where now.a is null or before.a is null')) %}
    {% do run_query(cdp.cc_replace(work.touched, '
        with ends as (select a as node from ' ~ work.changed ~ ' union select b from '
            ~ work.changed ~ ')
        select node from ends
        union
        select node from ' ~ existing_relation ~ ' where label in (
            select c.label from ' ~ existing_relation ~ ' as c join ends on c.node = ends.node
        )')) %}
    {% do run_query(cdp.cc_replace(work.input, 'select a, b from ' ~ work.links
        ~ ' where a in (select node from ' ~ work.touched ~ ')')) %}
  {%- else -%}
    {% do run_query(cdp.cc_replace(work.input, 'select a, b from ' ~ work.links)) %}
  {%- endif %}
  {% do run_query(cdp.cc_replace(work.edges,
      'with given as (select a, b from ' ~ work.input ~ ' where a <> b) '
      ~ 'select a, b from given union all select b, a from given')) %}
  {#- every node starts at the smallest of itself and its neighbours; a linked node is an `a`
      of the edges (both directions are there), one without links a row of its own -#}
  {% do run_query(cdp.cc_replace(work.parent,
      'select node, least(node, min(other)) as parent from ('
      ~ 'select a as node, b as other from ' ~ work.edges
      ~ ' union all select a, a from ' ~ work.input ~ ' where a = b'
      ~ ') as candidates group by node')) %}
  {{ drop_relation_if_exists(work.input) }}
  {% do run_query(cdp.cc_replace(work.settled,
      'select node, parent as label from ' ~ work.parent ~ ' where 1 = 0')) %}

  {%- set progress = {'done': false, 'active': []} -%}
  {%- for round in range(max_rounds + 1) -%}
   {%- if not progress.done -%}
    {{ cdp.cc_set_aside_settled(work) }}
    {%- set active = run_query('select count(*) from ' ~ work.parent).columns[0].values()[0] | int -%}
    {%- if active == 0 -%}
      {%- do progress.update({'done': true}) -%}
    {%- elif round == max_rounds -%}
      {{ exceptions.raise_compiler_error(
          'connected components: ' ~ active ~ ' nodes still unsettled after ' ~ max_rounds
          ~ ' rounds; raise max_rounds only if the graph is really this deep') }}
    {%- else -%}
      {%- do progress.active.append(active) -%}
      {{ cdp.cc_round(work) }}
    {%- endif -%}
   {%- endif -%}
  {%- endfor -%}
  {#- how the work shrank, round by round, for the asset's metadata -#}
  {%- set rounds = api.Relation.create(database=this.database, schema=this.schema,
        identifier=this.identifier ~ '__rounds', type='table') -%}
  {%- set per_round = [] -%}
  {%- for active in progress.active -%}
    {%- do per_round.append('select ' ~ loop.index ~ ' as round, ' ~ active ~ ' as active_nodes') -%}
  {%- endfor -%}
  {% do run_query(cdp.cc_replace(rounds, per_round | join(' union all ')
      if per_round else 'select 0 as round, 0 as active_nodes where 1 = 0')) %}

  {#- what this build computed and over how many nodes, for the asset's metadata -#}
  {%- set build = api.Relation.create(database=this.database, schema=this.schema,
        identifier=this.identifier ~ '__build', type='table') -%}
  {% do run_query(cdp.cc_replace(build, 'select ' ~ ('false' if incremental else 'true')
      ~ ' as full_recompute, (select count(*) from ' ~ work.settled ~ ') as recomputed_nodes')) %}

  {%- if incremental and target.type == 'duckdb' -%}
    {#- in place: a build's changes are few, the table and its links millions of rows -#}
    {% do run_query('delete from ' ~ existing_relation ~ ' where node in (select node from '
        ~ work.touched ~ ')') %}
    {% do run_query('insert into ' ~ existing_relation ~ ' select node, label from '
        ~ work.settled) %}
    {#- a node once: checked over the nodes written, before the build commits -#}
    {% do run_query(cdp.written_once(['node'], 'node in (select node from ' ~ work.settled
        ~ ')', existing_relation)) %}
    {% do run_query('delete from ' ~ previous_links ~ ' where (a, b) in (select a, b from '
        ~ work.changed ~ ' where not added)') %}
    {% do run_query('insert into ' ~ previous_links ~ ' select a, b from ' ~ work.changed
        ~ ' where added') %}
    {%- if config.get('lists_pending_persons') and target.type == 'duckdb' %}
    {% do run_query(cdp.list_pending_persons('select node from ' ~ work.touched)) %}
    {%- endif %}
  {%- else -%}
    {%- if incremental -%}
      {% do run_query(cdp.cc_replace(work.result, 'select node, label from ' ~ work.settled
          ~ ' union all select node, label from ' ~ existing_relation
          ~ ' where node not in (select node from ' ~ work.touched ~ ')')) %}
    {%- else -%}
      {% do run_query(cdp.cc_replace(work.result, 'select node, label from ' ~ work.settled)) %}
    {%- endif %}
    {#- the table and the links it was computed from are replaced together -#}
    {{ drop_relation_if_exists(existing_relation) }}
    {{ drop_relation_if_exists(previous_links) }}
    {% do run_query('create table ' ~ target_relation ~ ' as select node, label from '
        ~ work.result) %}
    {%- if target.type == 'duckdb' %}
    {% do run_query(cdp.written_once(['node'], none, target_relation)) %}
    {%- endif %}
    {% do run_query('create table ' ~ kept_links ~ ' as select a, b from ' ~ work.links) %}
    {%- if config.get('lists_pending_persons') and target.type == 'duckdb' %}
    {% do run_query(cdp.list_pending_persons(
        'select node from ' ~ work.touched if incremental else none)) %}
    {%- endif %}
  {%- endif %}
  {%- for relation in work.values() -%}
    {{ drop_relation_if_exists(relation) }}
  {%- endfor -%}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro cc_round(work) %}
  {#- grandparents, then each node's new parent: the least of its grandparent, its
      neighbours' grandparents and (as a parent) its children's neighbours' minimum -#}
  {% do run_query(cdp.cc_replace(work.grand,
      'select f.node, f.parent, p.parent as grandparent from ' ~ work.parent ~ ' as f '
      ~ 'join ' ~ work.parent ~ ' as p on f.parent = p.node')) %}
  {% do run_query(cdp.cc_replace(work.parent, '
      with neighbour_min as (
          select e.a as node, min(g.grandparent) as m
          from ' ~ work.edges ~ ' as e
          join ' ~ work.grand ~ ' as g on e.b = g.node
          group by e.a
      ),
      hooked as (
          select g.parent as node, min(n.m) as m
          from ' ~ work.grand ~ ' as g
          join neighbour_min as n on n.node = g.node
          group by g.parent
      )
      select
          g.node,
          least(g.grandparent, coalesce(n.m, g.grandparent), coalesce(h.m, g.grandparent))
              as parent
      from ' ~ work.grand ~ ' as g
      left join neighbour_min as n on n.node = g.node
      left join hooked as h on h.node = g.node')) %}
{% endmacro %}


{% macro cc_set_aside_settled(work) %}
  {#- a component is settled when it is a star (every parent is a root) and no link leaves
      it; its nodes move to the result and its links leave the working set -#}
  {% do run_query(cdp.cc_replace(work.moving, '
      select distinct f.parent as label
      from ' ~ work.parent ~ ' as f
      join ' ~ work.parent ~ ' as p on f.parent = p.node
      where p.parent <> p.node
      union
      select distinct f.parent
      from ' ~ work.edges ~ ' as e
      join ' ~ work.parent ~ ' as f on e.a = f.node
      join ' ~ work.parent ~ ' as g on e.b = g.node
      where f.parent <> g.parent')) %}
  {% do run_query('insert into ' ~ work.settled ~ ' select node, parent from ' ~ work.parent
      ~ ' where parent not in (select label from ' ~ work.moving ~ ')') %}
  {% do run_query(cdp.cc_replace(work.parent, 'select * from ' ~ work.parent
      ~ ' where parent in (select label from ' ~ work.moving ~ ')')) %}
  {% do run_query(cdp.cc_replace(work.edges, 'select e.a, e.b from ' ~ work.edges ~ ' as e '
      ~ 'where e.a in (select node from ' ~ work.parent ~ ')')) %}
{% endmacro %}


{#- A work table of the materialization: in memory where the engine has session-local
    temporary tables (DuckDB, where rounds then never touch the warehouse file), else a table
    beside the model's, dropped at the end. -#}
{% macro cc_work_relation(part) %}
  {{ return(adapter.dispatch('cc_work_relation', 'cdp')(part)) }}
{% endmacro %}

{% macro duckdb__cc_work_relation(part) %}
  {{ return(api.Relation.create(identifier=this.identifier ~ '__cc_' ~ part, type='table')) }}
{% endmacro %}

{% macro default__cc_work_relation(part) %}
  {{ return(api.Relation.create(database=this.database, schema=this.schema,
                                identifier=this.identifier ~ '__cc_' ~ part, type='table')) }}
{% endmacro %}

{#- Replace a work table with the result of a query that may read the table itself. -#}
{% macro cc_replace(relation, query) %}
  {{ return(adapter.dispatch('cc_replace', 'cdp')(relation, query)) }}
{% endmacro %}

{% macro duckdb__cc_replace(relation, query) %}
  {%- if relation.schema -%} create or replace table {{ relation }} as {{ query }}
  {%- else -%} create or replace temp table {{ relation }} as {{ query }}
  {%- endif -%}
{% endmacro %}

{% macro default__cc_replace(relation, query) %}
  {#- engines that cannot overwrite a table they read: write beside it, then swap -#}
  {%- set next = relation.incorporate(path={'identifier': relation.identifier ~ '__next'}) -%}
  {% do run_query('drop table if exists ' ~ next) %}
  {% do run_query('create table ' ~ next ~ ' as ' ~ query) %}
  {% do run_query('drop table if exists ' ~ relation) %}
  alter table {{ next }} rename to {{ relation }}
{% endmacro %}

{#- Links between the identifiers of one record: each to the record's smallest node (a star
    per record), as (a, b) for the connected_components materialization. Of the rows of
    `identifiers` (record, node, ...), those matching `may_link` and whose node is not in
    `removed` (a relation of nodes) are linked; `anchor` is the column holding each record's
    smallest node matching `may_link` (kept with the record). Only a record whose anchor was
    removed, or is missing (rows kept before the column was), needs its smallest node found
    again: every other star is centred on its anchor. -#}
{% macro star_links(identifiers, anchor, may_link, removed) %}
    select
        node as a,
        {{ anchor }} as b
    from {{ identifiers }}
    where
        {{ may_link }}
        and node not in (select node from {{ removed }})
        and {{ anchor }} not in (select node from {{ removed }})
    union all
    select
        node,
        min(node) over (partition by record)
    from {{ identifiers }}
    where
        {{ may_link }}
        and node not in (select node from {{ removed }})
        and ({{ anchor }} is null or {{ anchor }} in (select node from {{ removed }}))
{% endmacro %}
