{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='order_id',
        incremental_strategy='delete+insert',
        pre_hook="{{ cdp.note_loaded_before() }}",
        post_hook=[
            "{{ cdp.forget_erased({'order_id': 'cast(order_id as string)'}) }}",
            "{{ cdp.loaded_once(['order_id'], 'order_id') }}"
        ]
    )
}}

with

source as (

    select * from {{ source('raw_shop', 'orders') }}
    {{ loaded_since_last_build() }}

),

renamed as (

    select
        order_id,
        customer_id,
        {{ normalize_email('email') }} as email,
        email as email_raw,
        {{ email_problem('email') }} as email_problem,
        {{ normalize_phone('phone', 'ship_country') }} as phone,
        {{ phone_problem('phone', 'ship_country') }} as phone_problem,
        {{ clean_text('phone') }} as phone_raw,
        upper({{ clean_text('ship_country') }}) as ship_country,
        lower(status) as status,
        lower(channel) as channel,
        is_gift,
        total_amount,
        upper(currency) as currency,
        ordered_at,
        updated_at,
        _loaded_at

    from source

)

select * from renamed
