{#- Interest in product categories from behaviour, one row per person and category: every
    signal adds its weight (var `interests.weights`) to its product's category, halved every
    `interests.half_life_days` days of age on CDP_AS_OF (a signal of today or later counts
    whole). Signals: GA4 item views, cart adds and purchase items, and the lines of valid shop
    orders; a line or item counts once whatever its quantity. A purchase is counted once: GA4
    purchase items whose transaction_id is a shop order are left to the shop's lines, which
    know whether the order counts (a cancelled or refunded order counts for nothing); GA4
    purchases the shop does not know count as GA4 saw them. GA4 signals are summed per device
    before the join to persons, so one row per device and category meets it. -#}

{%- set weights = var('interests')['weights'] %}

with

devices as (

    select identifier_value as device_id, customer_key
    from {{ ref('int_identity__customer_identities') }}
    where identifier_type = 'device'

),

shop_orders as (

    select order_id::string as transaction_id
    from {{ ref('stg_shop__orders') }}

),

web_items as (

    select items.*
    from {{ ref('stg_ga4__items') }} as items
    anti join shop_orders
        on items.event_name = 'purchase' and shop_orders.transaction_id = items.transaction_id
    where items.device_id is not null and items.category is not null

),

per_device as (

    select
        device_id,
        category,
        sum(
            case event_name
                {%- for event_name, weight in weights.items() %}
                when '{{ event_name }}' then {{ weight }}
                {%- endfor %}
            end * {{ interest_decay('event_at') }}
        ) as score,
        count(*) filter (where event_name = 'view_item') as views,
        count(*) filter (where event_name = 'add_to_cart') as cart_adds,
        count(*) filter (where event_name = 'purchase') as purchases
    from web_items
    group by device_id, category

),

shop_lines as (

    select
        orders.customer_key,
        products.category,
        sum({{ weights['purchase'] }} * {{ interest_decay('orders.ordered_at') }}) as score,
        count(*) as purchases
    from {{ ref('int_customers__orders') }} as orders
    inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
    inner join {{ ref('stg_shop__products') }} as products using (product_id)
    where orders.is_valid and products.category is not null
    group by orders.customer_key, products.category

),

signals as (

    select
        devices.customer_key,
        per_device.category,
        per_device.score,
        per_device.views,
        per_device.cart_adds,
        per_device.purchases
    from per_device
    inner join devices using (device_id)
    union all
    select customer_key, category, score, 0, 0, purchases
    from shop_lines

),

summed as (

    select
        customer_key,
        category,
        -- rounded, so that equal signals summed in another order still tie
        {{ cdp.round_half_up('sum(score)', 6) }} as score,
        sum(views)::bigint as views,
        sum(cart_adds)::bigint as cart_adds,
        sum(purchases)::bigint as purchases
    from signals
    group by customer_key, category

)

select
    customer_key,
    category,
    score,
    score / sum(score) over (partition by customer_key) as share,
    row_number() over (partition by customer_key order by score desc, category) as category_rank,
    views,
    cart_adds,
    purchases
from summed
