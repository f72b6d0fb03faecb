{#- GA4 behaviour per person, through the devices stitched to them. Read from the events'
    aggregate per device and day (int_ga4__device_days), summed up per device first (sessions
    belong to one device), so only one row per device meets the join. Kept per person: a
    build reads the device days of the touched persons' devices only. -#}

{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

with

devices as (

    select identifier_value as device_id, customer_key
    from {{ ref('int_identity__customer_identities') }}
    where identifier_type = 'device' and {{ cdp.touched_persons_only('customer_key') }}

),

device_days as (

    select * from {{ ref('int_ga4__device_days') }}
    {%- if cdp.only_touched_persons() %}
    semi join devices using (device_id)
    {%- endif %}

),

per_device as (

    select
        device_id,
        {{ cdp.count_distinct_in_lists('sessions') }} as sessions,
        sum(page_views) as page_views,
        min(first_event_at) as first_event_at,
        max(last_event_at) as last_event_at,
        min_by(
            first_touch,
            {{ cdp.make_struct([('at', 'first_touch.at'), ('event_at', 'first_touch.event_at'),
                             ('source', 'first_touch.source'),
                             ('medium', 'first_touch.medium')]) }}
        ) filter (where first_touch is not null) as first_touch
    from device_days
    group by device_id

),

device_categories as (

    select device_id, device_category, sum(events) as events
    from device_days
    where device_category is not null
    group by device_id, device_category

),

preferred_device as (

    select customer_key, device_category
    from (
        select devices.customer_key, device_categories.device_category,
               sum(device_categories.events) as events
        from device_categories
        inner join devices using (device_id)
        group by devices.customer_key, device_categories.device_category
    ) as per_person
    qualify row_number() over (
        partition by customer_key order by events desc, device_category
    ) = 1

),

totals as (

    select
        devices.customer_key,
        sum(per_device.sessions)::bigint as sessions,
        sum(per_device.page_views)::bigint as page_views,
        min(per_device.first_event_at) as first_event_at,
        max(per_device.last_event_at) as last_event_at,
        min_by(
            per_device.first_touch,
            {{ cdp.make_struct([('first_touch_at', 'per_device.first_touch.at'),
                              ('device_id', 'per_device.device_id')]) }}
        ) filter (where per_device.first_touch is not null) as first_touch
    from per_device
    inner join devices using (device_id)
    group by devices.customer_key

)

select
    totals.customer_key,
    totals.sessions,
    totals.page_views,
    totals.first_event_at,
    totals.last_event_at,
    preferred_device.device_category as preferred_device,
    totals.first_touch.source as acquisition_source,
    totals.first_touch.medium as acquisition_medium
from totals
left join preferred_device using (customer_key)
