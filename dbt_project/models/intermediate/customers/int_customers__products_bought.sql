{#- The products each person bought in a valid order, one row per person and product. Kept from
    build to build for the persons not touched since (macros/persons.sql): the recommendations
    and the co-purchase counts read it instead of every order line ever placed. -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

select distinct orders.customer_key, items.product_id
from {{ ref('int_customers__orders') }} as orders
inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
where orders.is_valid and {{ cdp.touched_persons_only('orders.customer_key') }}
