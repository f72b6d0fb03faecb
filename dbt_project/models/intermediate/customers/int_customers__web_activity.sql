{#- GA4 behaviour per person, through the devices stitched to them. -#}

with

devices as (

    select identifier_value as device_id, customer_key
    from {{ source('identity', 'customer_identities') }}
    where identifier_type = 'device'

),

events as (

    select devices.customer_key, events.*
    from {{ ref('stg_ga4__events') }} as events
    inner join devices using (device_id)

),

device_categories as (

    select customer_key, device_category
    from events
    where device_category is not null
    group by customer_key, device_category
    qualify row_number() over (
        partition by customer_key order by count(*) desc, device_category
    ) = 1

),

first_touch as (

    select customer_key, first_touch_source, first_touch_medium
    from events
    where first_touch_at is not null
    qualify row_number() over (
        partition by customer_key order by first_touch_at, device_id, event_at
    ) = 1

),

totals as (

    select
        customer_key,
        count(distinct device_id || ':' || ga_session_id::varchar) as sessions,
        count(*) filter (where event_name = 'page_view') as page_views,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from events
    group by customer_key

)

select
    totals.*,
    device_categories.device_category as preferred_device,
    first_touch.first_touch_source as acquisition_source,
    first_touch.first_touch_medium as acquisition_medium
from totals
left join device_categories using (customer_key)
left join first_touch using (customer_key)
