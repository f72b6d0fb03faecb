{#- Every linked identifier with its component (label), for components that are persons: at
    least one identifier besides order ids (an order alone is nobody), and none erased (a
    person holding an erased identifier, however it arrived, is dropped whole). Kept from
    build to build: a build recomputes only the components of the nodes listed since
    (macros/identity/restitch.sql). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_listed_persons() if is_incremental() }}",
        post_hook="{{ cdp.pending_persons_taken() }}"
    )
}}

{%- set listed_only = cdp.persons_listed_only() %}

with

{%- if listed_only %}

labels as materialized (

    select distinct label from {{ ref('int_identity__components') }}
    where node in (select node from {{ cdp.persons_pending() }})

),

{%- endif %}

identifiers as (

    select
        nodes.node,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.first_seen_at,
        nodes.last_seen_at,
        components.label
    from {{ ref('int_identity__nodes') }} as nodes
    inner join {{ ref('int_identity__components') }} as components
        on nodes.node = components.node
    {%- if listed_only %}
    where components.label in (select label from labels)
    {%- endif %}

),

persons as (

    select distinct label from identifiers where identifier_type <> 'order_id'

),

erased as (

    {% if cdp.erasures_recorded() -%}
    select distinct identifiers.label
    from identifiers
    inner join {{ source('privacy', 'erased_identifiers') }} as erased_identifiers
        on
            identifiers.identifier_type = erased_identifiers.identifier_type
            and {{ cdp.erasure_hash('identifiers.identifier_type', 'identifiers.identifier_value') }}
            = erased_identifiers.identifier_hash
    {%- else -%}
    {#- the source still counts as a parent, so the erasure step runs first -#}
    select cast(null as bigint) as label from {{ source('privacy', 'erased_identifiers') }}
    where 1 = 0
    {%- endif %}

)

select * from identifiers
where
    label in (select label from persons)
    and label not in (select label from erased)
