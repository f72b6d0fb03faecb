{#- The person (customer_key) behind every shop order, guest checkouts included. -#}

select
    {{ dbt.safe_cast('identifier_value', api.Column.translate_type('bigint')) }} as order_id,
    customer_key
from {{ ref('int_identity__identifier_keys') }}
where identifier_type = 'order_id'
