{#- Every distinct identifier, numbered: the nodes of the identity graph. -#}

select
    row_number() over (order by identifier_type, identifier_value) as node,
    identifier_type,
    identifier_value,
    min(first_seen_at) as first_seen_at,
    max(last_seen_at) as last_seen_at
from {{ ref('int_identity__observations') }}
group by identifier_type, identifier_value
