{#- The person (customer_key) behind every shop order, guest checkouts included. An order id
    GA4 reports that is not a number names no shop order and is left out. -#}

select
    try_cast(identifier_value as bigint) as order_id,
    customer_key
from {{ ref('int_identity__identifier_keys') }}
where
    identifier_type = 'order_id'
    and try_cast(identifier_value as bigint) is not null
