{#- Interest in product categories from behaviour, one row per person and category: every
    signal adds its weight (var `interests.weights`) to its product's category, halved every
    `interests.half_life_days` days before the person's latest signal (macros/interests.sql);
    an event whose name has no weight is no signal.
    Signals: GA4 item views, cart adds and purchase items, and the lines of valid shop orders;
    a line or item counts once whatever its quantity. A purchase is counted once: GA4 purchase
    items whose transaction_id is a shop order are left to the shop's lines, which know whether
    the order counts (a cancelled or refunded order counts for nothing); GA4 purchases the shop
    does not know count as GA4 saw them. GA4 signals are summed per device, category and day
    before the join to persons, so one row per device, category and day meets it. Kept per
    person: a build reads the signals of the touched persons only (an order loaded since
    touches the persons of the devices whose GA4 purchases carry its id). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

{%- set weights = var('interests')['weights'] %}
{%- set weighted = "'" ~ (weights.keys() | join("', '")) ~ "'" %}

with

devices as (

    select identifier_value as device_id, customer_key
    from {{ ref('int_identity__customer_identities') }}
    where identifier_type = 'device' and {{ cdp.touched_persons_only('customer_key') }}

),

shop_orders as (

    select order_id::string as transaction_id
    from {{ ref('stg_shop__orders') }}

),

web_items as (

    select items.*
    from {{ ref('stg_ga4__items') }} as items
    {%- if cdp.only_touched_persons() %}
    semi join devices using (device_id)
    {%- endif %}
    anti join shop_orders
        on items.event_name = 'purchase' and shop_orders.transaction_id = items.transaction_id
    where items.device_id is not null and items.category is not null
        and items.event_name in ({{ weighted }})

),

per_device as (

    -- per day: a day's weights add up exactly, and decay by the day's distance to the
    -- person's latest signal, known once the devices meet their persons
    select
        device_id,
        category,
        cast(event_at as date) as signal_day,
        sum(
            case event_name
                {%- for event_name, weight in weights.items() %}
                when '{{ event_name }}' then {{ weight }}
                {%- endfor %}
            end
        ) as weight,
        count(*) filter (where event_name = 'view_item') as views,
        count(*) filter (where event_name = 'add_to_cart') as cart_adds,
        count(*) filter (where event_name = 'purchase') as purchases
    from web_items
    group by device_id, category, cast(event_at as date)

),

shop_lines as (

    select
        orders.customer_key,
        products.category,
        cast(orders.ordered_at as date) as signal_day,
        {{ weights['purchase'] }} * count(*) as weight,
        count(*) as purchases
    from {{ ref('int_customers__orders') }} as orders
    inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
    inner join {{ ref('stg_shop__products') }} as products using (product_id)
    where orders.is_valid and products.category is not null
        and {{ cdp.touched_persons_only('orders.customer_key') }}
    group by orders.customer_key, products.category, cast(orders.ordered_at as date)

),

signals as (

    select
        devices.customer_key,
        per_device.category,
        per_device.signal_day,
        per_device.weight,
        per_device.views,
        per_device.cart_adds,
        per_device.purchases
    from per_device
    inner join devices using (device_id)
    union all
    select customer_key, category, signal_day, weight, 0, 0, purchases
    from shop_lines

),

dated as (

    select *, max(signal_day) over (partition by customer_key) as latest_day
    from signals

),

scored as (

    select
        customer_key,
        category,
        -- rounded, so that equal signals summed in another order still tie
        {{ cdp.round_half_up(
            'sum(weight * ' ~ interest_decay('signal_day', 'latest_day') ~ ')', 6) }} as score,
        sum(views)::bigint as views,
        sum(cart_adds)::bigint as cart_adds,
        sum(purchases)::bigint as purchases
    from dated
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
from scored
