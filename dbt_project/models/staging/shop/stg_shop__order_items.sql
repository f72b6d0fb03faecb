{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='order_id',
        incremental_strategy='delete+insert',
        post_hook="{{ cdp.forget_erased({'order_id': 'cast(order_id as string)'}) }}"
    )
}}

with

source as (

    select * from {{ source('raw_shop', 'order_items') }}
    {{ loaded_since_last_build() }}

),

renamed as (

    select
        order_id,
        line_no,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        _loaded_at

    from source

)

select * from renamed
