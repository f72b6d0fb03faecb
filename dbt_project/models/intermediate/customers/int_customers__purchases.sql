{#- Order behaviour per person by the business rules (only valid orders count), amounts in
    the reporting currency. Kept from build to build for the persons not touched since
    (macros/persons.sql). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

with

orders as (

    select * from {{ ref('int_customers__orders') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

category_spend as (

    select
        orders.customer_key,
        products.category,
        -- in decimals: a sum of doubles depends on the order the rows come in, and two
        -- categories with the same spend must tie in every build, so the name decides
        sum(cast(items.line_amount * orders.fx_rate as decimal(38, 6))) as spend
    from orders
    inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
    inner join {{ ref('stg_shop__products') }} as products using (product_id)
    where orders.is_valid
    group by orders.customer_key, products.category

),

favorite_category as (

    select customer_key, category as favorite_category
    from category_spend
    qualify row_number() over (partition by customer_key order by spend desc, category) = 1

),

totals as (

    select
        customer_key,
        count(*) filter (where is_valid) as orders,
        coalesce(sum(reporting_amount) filter (where is_valid), 0) as revenue,
        min(ordered_at) filter (where is_valid) as first_order_at,
        max(ordered_at) filter (where is_valid) as last_order_at,
        count(*) filter (where is_valid and is_gift) as gift_orders,
        count(*) filter (where is_valid and channel in ('web', 'app')) as online_orders,
        count(*) filter (where is_valid and channel in ('store', 'phone')) as offline_orders,
        -- all orders placed, valid or not, decide the buyer group (most of them gifts)
        count(*) as orders_placed,
        count(*) filter (where is_gift) as gift_orders_placed
    from orders
    group by customer_key

)

select
    totals.*,
    case
        when totals.orders > 0
            then {{ cdp.round_half_up('totals.revenue::double / totals.orders', 2) }}
    end
        as avg_order_value,
    favorite_category.favorite_category
from totals
left join favorite_category using (customer_key)
