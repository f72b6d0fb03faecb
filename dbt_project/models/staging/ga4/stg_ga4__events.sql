{#- Stored, and rebuilt per export day: a nightly build reads only the days loaded since it
    last ran, so the nested export is unpacked once per day instead of by every model. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='export_day',
        incremental_strategy='delete+insert',
        post_hook="{{ cdp.forget_erased({'device': 'device_id', 'customer_id': 'user_id', 'order_id': 'transaction_id'}) }}"
    )
}}

with

source as (

    select * from {{ source('raw_ga4', 'events') }}
    {{ loaded_since_last_build() }}

),

renamed as (

    select
        user_pseudo_id as device_id,
        nullif(trim(user_id), '') as user_id,
        event_name,
        {{ micros_to_timestamp('event_timestamp') }} as event_at,
        {{ cdp.parse_date('event_date', '%Y%m%d', 'yyyyMMdd') }} as event_date,
        {{ ga4_param('event_params', 'ga_session_id', 'int_value') }} as ga_session_id,
        {{ ga4_param('event_params', 'page_location') }} as page_location,
        {{ ga4_param('event_params', 'page_title') }} as page_title,
        platform,
        device.category as device_category,
        device.operating_system as device_operating_system,
        geo.country as geo_country,
        geo.city as geo_city,
        traffic_source.source as first_touch_source,
        traffic_source.medium as first_touch_medium,
        {{ micros_to_timestamp('user_first_touch_timestamp') }} as first_touch_at,
        nullif(trim(ecommerce.transaction_id), '') as transaction_id,
        ecommerce.purchase_revenue as purchase_revenue,
        _export_day as export_day,
        _loaded_at

    from source

)

select * from renamed
