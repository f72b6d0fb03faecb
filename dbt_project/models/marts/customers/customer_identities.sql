{#- Published copy of the identity map: one row per identifier. -#}
select identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
from {{ ref('int_identity__customer_identities') }}
