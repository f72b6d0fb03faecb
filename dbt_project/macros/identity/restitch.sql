{#- Stitching after the connected components, kept from build to build (DuckDB): persons,
    key inheritance and identifier keys recompute only the persons of the nodes whose
    component or sightings changed since they were last built.

    `int_identity__persons__pending` lists those nodes with the build (`_build`) that listed
    them: int_identity__components appends every node of the components it recomputed (the
    nodes of the links added or gone, and every node of their components before and after),
    int_identity__nodes every identifier it recomputed (new, gone, or seen at other times). A
    row without a node says: recompute everybody (a components or nodes build from scratch).
    int_identity__persons applies everything listed when it runs and records which builds
    that was (`__applied`); the two models after it apply the same builds, and
    int_identity__identifier_keys deletes them once it has. A build that stops in between loses nothing: what was listed stays listed,
    and recomputing a person twice gives the same rows.

    Recomputing the persons of the listed nodes is exact: a component recomputed holds only
    listed nodes before and after (int_identity__components), so every earlier customer_key
    held by one of them had all its identifiers listed, and every other person keeps its
    identifiers, its key and its label. -#}

{%- macro persons_pending() -%}
  {{ return(api.Relation.create(database=this.database, schema=this.schema,
      identifier='int_identity__persons__pending', type='table')) }}
{%- endmacro -%}

{%- macro persons_applied() -%}
  {{ return(api.Relation.create(database=this.database, schema=this.schema,
      identifier='int_identity__persons__applied', type='table')) }}
{%- endmacro -%}

{#- SQL that lists nodes for the persons after them to recompute: `nodes` a query of one
    column, or none for everybody. Nothing on engines that rebuild those models whole. -#}
{%- macro list_pending_persons(nodes=none) -%}
  {%- if target.type == 'duckdb' -%}
    create table if not exists {{ cdp.persons_pending() }} (node bigint, _build varchar);
    insert into {{ cdp.persons_pending() }}
    {% if nodes is none -%}
    values (null, '{{ invocation_id }}')
    {%- else -%}
    select distinct node, '{{ invocation_id }}' from ({{ nodes }}) as listed
    {%- endif %}
  {%- endif -%}
{%- endmacro -%}

{#- Whether int_identity__persons recomputes only the persons of the listed nodes: not on
    its first build or a full refresh, and not when a listed build said everybody. Decided
    when the model is compiled, after the models that list nodes have run. -#}
{%- macro persons_listed_only() -%}
  {%- if not execute or not is_incremental()
        or not cdp.relation_exists(cdp.persons_pending()) -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set everybody = run_query('select count(*) from ' ~ cdp.persons_pending()
        ~ ' where node is null').columns[0].values()[0] -%}
  {{ return(everybody | int == 0) }}
{%- endmacro -%}

{#- Post-hook of int_identity__persons: the builds whose listed nodes it applied, which the
    models after it apply in turn (nothing is listed between the two: the models that list
    nodes run before int_identity__persons). -#}
{%- macro pending_persons_taken() -%}
  {%- if target.type == 'duckdb' -%}
    create table if not exists {{ cdp.persons_pending() }} (node bigint, _build varchar);
    create or replace table {{ cdp.persons_applied() }} as
    select distinct _build from {{ cdp.persons_pending() }}
  {%- endif -%}
{%- endmacro -%}

{#- Whether a model after int_identity__persons recomputes only the listed nodes' persons:
    when int_identity__identifier_keys was built before, with the `node` column, and none of
    the builds int_identity__persons applied said everybody. -#}
{%- macro restitch_listed_only() -%}
  {%- if not execute or target.type != 'duckdb' or should_full_refresh() -%}
    {{ return(false) }}
  {%- endif -%}
  {%- if not cdp.relation_exists(cdp.persons_applied())
        or not cdp.relation_exists(cdp.persons_pending()) -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set keys = adapter.get_relation(database=this.database, schema=this.schema,
        identifier='int_identity__identifier_keys') -%}
  {%- if keys is none or 'node' not in (adapter.get_columns_in_relation(keys)
        | map(attribute='name') | list) -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set everybody = run_query('select count(*) from ' ~ cdp.persons_pending()
        ~ ' where node is null and _build in (select _build from ' ~ cdp.persons_applied()
        ~ ')').columns[0].values()[0] -%}
  {{ return(everybody | int == 0) }}
{%- endmacro -%}

{#- The listed nodes int_identity__persons applied in this build. -#}
{%- macro pending_nodes() -%}
    select node from {{ cdp.persons_pending() }}
    where _build in (select _build from {{ cdp.persons_applied() }})
{%- endmacro -%}

{#- The rows of int_identity__persons a model after it recomputes: those of the persons of the
    listed nodes (`listed_only`, cdp.restitch_listed_only), else all. -#}
{%- macro restitched_persons(listed_only) -%}
    select * from {{ ref('int_identity__persons') }}
    {%- if listed_only %}
    where label in (
        select label from {{ ref('int_identity__persons') }}
        where node in ({{ cdp.pending_nodes() }})
    )
    {%- endif %}
{%- endmacro -%}

{#- Post-hook of int_identity__identifier_keys: the listed builds are applied. -#}
{%- macro pending_persons_applied() -%}
  {%- if target.type == 'duckdb' and cdp.relation_exists(cdp.persons_applied()) -%}
    delete from {{ cdp.persons_pending() }}
    where _build in (select _build from {{ cdp.persons_applied() }})
  {%- endif -%}
{%- endmacro -%}

{#- Pre-hook of int_identity__persons: the rows of the listed nodes' persons go (found by
    their labels before, and the nodes themselves), or every row. -#}
{%- macro forget_listed_persons() -%}
    delete from {{ this }}
  {%- if cdp.persons_listed_only() %}
    where node in (select node from {{ cdp.persons_pending() }})
        or label in (
            select label from {{ this }}
            where node in (select node from {{ cdp.persons_pending() }})
        )
  {%- endif %}
{%- endmacro -%}

{#- The nodes of the identifiers int_identity__observations__changes lists. -#}
{%- macro changed_observation_nodes() -%}
    select {{ cdp.identifier_number('identifier_type', 'identifier_value') }} as node
    from {{ cdp.observation_changes() }}
{%- endmacro -%}

{#- The nodes whose rows int_identity__identifier_keys replaced (taken out, put in or both),
    for int_customers__touched_persons to compare (cdp.compare_identifier_keys): (node,
    build), a row without a node when it replaced every row. Emptied once compared. -#}
{%- macro replaced_identifier_keys(keys) -%}
  {{ return(api.Relation.create(database=keys.database, schema=keys.schema,
      identifier=keys.identifier ~ '__replaced', type='table')) }}
{%- endmacro -%}

{#- Filter of the rows of int_identity__identifier_keys of the nodes this build replaced (an
    identifier's rows all share its node). -#}
{%- macro identifier_keys_written() -%}
    node in (
        select node from {{ cdp.replaced_identifier_keys(this) }}
        where _build = '{{ invocation_id }}'
    )
{%- endmacro -%}

{#- Whether `replaced` lists nodes, rather than saying every row was replaced. -#}
{%- macro identifier_keys_replaced_listed(replaced) -%}
  {%- if not execute or not cdp.relation_exists(replaced) -%}{{ return(false) }}{%- endif -%}
  {%- set everybody = run_query('select count(*) from ' ~ replaced
        ~ ' where node is null').columns[0].values()[0] -%}
  {{ return(everybody | int == 0) }}
{%- endmacro -%}

{#- Pre-hook of int_identity__identifier_keys: on a build of the listed nodes' persons only,
    the rows of their keys before (the nodes listed, and every identifier sharing a key with
    one) are listed as replaced and go, and no key is new any more; on a build of everybody,
    every row goes. -#}
{%- macro forget_listed_identifier_keys() -%}
  {%- if target.type == 'duckdb' and cdp.restitch_listed_only() -%}
    {%- set replaced = cdp.replaced_identifier_keys(this) %}
    create table if not exists {{ replaced }} (node bigint, _build varchar);
    create or replace temp table _replaced_nodes as
    select node from {{ this }}
    where node in ({{ cdp.pending_nodes() }})
        or customer_key in (
            select customer_key from {{ this }} where node in ({{ cdp.pending_nodes() }})
        );
    insert into {{ replaced }} select node, '{{ invocation_id }}' from _replaced_nodes;
    delete from {{ this }} where node in (select node from _replaced_nodes);
    update {{ this }} set is_new_key = false where is_new_key;
    drop table _replaced_nodes
  {%- elif is_incremental() %}
    delete from {{ this }}
  {%- endif -%}
{%- endmacro -%}

{#- Post-hook of int_identity__identifier_keys: the nodes it wrote are listed as replaced
    too; after a build of everybody, one row says so. -#}
{%- macro list_replaced_identifier_keys() -%}
  {%- if target.type == 'duckdb' -%}
    {%- set replaced = cdp.replaced_identifier_keys(this) %}
    create table if not exists {{ replaced }} (node bigint, _build varchar);
    {%- if cdp.restitch_listed_only() %}
    insert into {{ replaced }}
    select node, '{{ invocation_id }}' from ({{ cdp.restitched_persons(true) }}) as persons
    {%- else %}
    insert into {{ replaced }} values (null, '{{ invocation_id }}')
    {%- endif %}
  {%- endif -%}
{%- endmacro -%}
