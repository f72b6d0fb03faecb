{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        pre_hook="{{ cdp.note_loaded_before() }}",
        post_hook=[
            "{{ cdp.forget_erased({'customer_id': 'cast(customer_id as string)', 'email': 'email', 'phone': 'phone'}) }}",
            "{{ cdp.loaded_once(['customer_id'], 'customer_id') }}"
        ]
    )
}}

with

source as (

    select * from {{ source('raw_shop', 'customers') }}
    {{ loaded_since_last_build() }}

),

renamed as (

    select
        customer_id,
        {{ normalize_email('email') }} as email,
        email as email_raw,
        {{ email_problem('email') }} as email_problem,
        {{ normalize_phone('phone', 'country') }} as phone,
        {{ phone_problem('phone', 'country') }} as phone_problem,
        {{ clean_text('phone') }} as phone_raw,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        birth_date,
        {{ clean_text('gender') }} as gender_raw,
        {{ clean_text('city') }} as city,
        upper({{ clean_text('country') }}) as country,
        {{ clean_text('company_name') }} as company_name,
        marketing_consent,
        created_at,
        updated_at,
        _loaded_at

    from source

)

select * from renamed
