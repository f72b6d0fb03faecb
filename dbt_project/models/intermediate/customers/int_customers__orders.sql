{#- Shop orders with the person who placed them and whether they count (business rules:
    paid, shipped or delivered orders count; cancelled and refunded ones count for nothing). -#}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_keys as (

    select * from {{ source('identity', 'order_keys') }}

)

select
    orders.*,
    order_keys.customer_key,
    orders.status in (
        {%- for status in var('valid_order_statuses') -%}
            '{{ status }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    ) as is_valid
from orders
inner join order_keys using (order_id)
