{#- Merge protection, first part: identifiers that are not a person's (seed
    identity_blocklist) and emails or phones shared by more partners than their limit (var
    identity.limits). Shared devices follow in int_identity__guard_audit. -#}

with

nodes as (select * from {{ ref('int_identity__nodes') }}),

record_identifiers as (select * from {{ ref('int_identity__record_identifiers') }}),

blocklist as (select * from {{ ref('identity_blocklist') }}),

blocklisted as (

    select
        nodes.node,
        'blocklist' as rule,
        case
            when blocklist.match = 'exact'
                then 'exact value on the ' || blocklist.identifier_type || ' blocklist'
            else 'matches ' || blocklist.identifier_type || ' blocklist pattern ' || blocklist.value
        end as reason
    from nodes
    inner join blocklist
        on
            nodes.identifier_type = blocklist.identifier_type
            and (
                (blocklist.match = 'exact' and nodes.identifier_value = blocklist.value)
                or (
                    blocklist.match = 'pattern'
                    and {{ cdp.regex_matches('nodes.identifier_value', 'blocklist.value') }}
                )
            )

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
    from record_identifiers as member
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
