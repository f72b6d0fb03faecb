{#- The products of GA4's ecommerce events, one row per item: the views, cart adds and
    purchases that interests are inferred from. Stored and rebuilt per export day like
    stg_ga4__events, so the nested items are unpacked once per day. The category is the
    item's own, else the shop's category of the product with that sku (item_id = sku). -#}
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

unnested as (

    select
        user_pseudo_id,
        user_id,
        event_name,
        event_timestamp,
        ecommerce.transaction_id as transaction_id,
        {{ cdp.unnest_list('items') }} as item,
        _export_day,
        _loaded_at
    from source
    where event_name in ('view_item', 'add_to_cart', 'purchase')

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

renamed as (

    select
        unnested.user_pseudo_id as device_id,
        nullif(trim(unnested.user_id), '') as user_id,
        unnested.event_name,
        {{ micros_to_timestamp('unnested.event_timestamp') }} as event_at,
        nullif(trim(unnested.transaction_id), '') as transaction_id,
        nullif(trim(unnested.item.item_id), '') as sku,
        coalesce(lower({{ clean_text('unnested.item.item_category') }}), products.category)
            as category,
        unnested.item.quantity as quantity,
        unnested._export_day as export_day,
        unnested._loaded_at

    from unnested
    left join products on products.sku = nullif(trim(unnested.item.item_id), '')

)

select * from renamed
