{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='order_id',
        incremental_strategy='delete+insert',
        pre_hook="{{ cdp.note_loaded_before() }}",
        post_hook=[
            "{{ cdp.forget_erased({'order_id': 'cast(order_id as string)'}) }}",
            "{{ cdp.loaded_once(['order_id', 'line_no'], 'order_id') }}"
        ]
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
