{#- Merge protection, first part: identifiers that are not a person's (seed
    identity_blocklist) and emails or phones shared by more partners than their limit (var
    identity.limits). Shared devices follow in int_identity__guard_audit.
    Kept from build to build: a build judges again only the identifiers of the observations
    replaced since it last ran (int_identity__observations__changes). No other identifier's
    partners changed: an identifier's partners are those of the records holding it. It has
    applied a build only once the nodes and record identifiers it reads had. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_changed_observations('nodes') if is_incremental() }}",
        post_hook="{{ cdp.observation_changes_applied(
            after=['int_identity__nodes', 'int_identity__record_identifiers']) }}"
    )
}}
-- depends_on: {{ ref('int_identity__observations') }}

{%- set listed = is_incremental() and cdp.observation_changes_listed() %}

with

{%- if listed %}

changed_nodes as (

    select distinct {{ cdp.identifier_number('identifier_type', 'identifier_value') }} as node
    from {{ cdp.observation_changes() }}

),

-- materialized: inlined, the engine joins every record's identifiers before it filters
nodes as materialized (
    select * from {{ ref('int_identity__nodes') }}
    where node in (select node from changed_nodes)
),

members as materialized (
    select * from {{ ref('int_identity__record_identifiers') }}
    where node in (select node from changed_nodes)
),

{%- else %}

nodes as (select * from {{ ref('int_identity__nodes') }}),

members as (select * from {{ ref('int_identity__record_identifiers') }}),

{%- endif %}

record_identifiers as (select * from {{ ref('int_identity__record_identifiers') }}),

blocklist as (select * from {{ ref('identity_blocklist') }}),

{#- Each pattern goes into the SQL as a constant: a pattern read from a column is compiled
    again for every row it is matched against, which costs minutes at millions of nodes. -#}
{%- set patterns = [] -%}
{%- set seed = load_relation(ref('identity_blocklist')) if execute else none -%}
{%- if seed is not none -%}
    {%- set rows = run_query("select identifier_type, value from " ~ seed
        ~ " where match = 'pattern' order by identifier_type, value") -%}
    {%- for row in rows -%}{%- do patterns.append((row[0], row[1])) -%}{%- endfor -%}
{%- endif %}

blocklisted as (

    select
        nodes.node,
        'blocklist' as rule,
        'exact value on the ' || blocklist.identifier_type || ' blocklist' as reason
    from nodes
    inner join blocklist
        on
            nodes.identifier_type = blocklist.identifier_type
            and nodes.identifier_value = blocklist.value
    where blocklist.match = 'exact'
    {%- for kind, pattern in patterns %}
    union all
    select
        node,
        'blocklist' as rule,
        {{ cdp.string_literal('matches ' ~ kind ~ ' blocklist pattern ' ~ pattern) }} as reason
    from nodes
    where
        identifier_type = '{{ kind }}'
        and {{ cdp.regex_matches('identifier_value', cdp.string_literal(pattern)) }}
    {%- endfor %}

),

{%- set limits = [] -%}
{%- for kind, partners in var('identity')['limits'].items() -%}
    {%- for partner, limit in partners.items() -%}
        {%- do limits.append((kind, partner, limit | int)) -%}
    {%- endfor -%}
{%- endfor %}

over_limit as (
    {% for kind, partner, limit in limits %}
    {{ 'union all' if not loop.first }}
    select
        member.node,
        'limit' as rule,
        '{{ kind }} shared by ' || count(distinct partner.node)
        || ' {{ partner }}s (limit {{ limit }})' as reason
    from members as member
    inner join record_identifiers as partner
        on member.record = partner.record and partner.identifier_type = '{{ partner }}'
    where member.identifier_type = '{{ kind }}'
    group by member.node
    having count(distinct partner.node) > {{ limit }}
    {% endfor %}

)

select
    node,
    rule,
    min(reason) as reason
from (
    select * from blocklisted
    union all
    select * from over_limit
) as blocked
group by node, rule
