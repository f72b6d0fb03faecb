{#- No two rows share these columns' values. Rows are first grouped by one hash of the columns,
    a single number, far cheaper to group than several strings; only hashes that more than one
    row share are then grouped by the values themselves, so the result is exact. -#}
{% test unique_combination(model, columns) %}
{%- set values = columns | join(', ') %}
with colliding as (
    select {{ cdp.row_hash(columns) }} as row_hash
    from {{ model }}
    group by {{ cdp.row_hash(columns) }}
    having count(*) > 1
)
select {{ values }}, count(*) as n
from {{ model }}
where {{ cdp.row_hash(columns) }} in (select row_hash from colliding)
group by {{ values }}
having count(*) > 1
{% endtest %}
