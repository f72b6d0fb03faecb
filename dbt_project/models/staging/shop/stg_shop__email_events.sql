{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='email_event_id',
        incremental_strategy='delete+insert',
        pre_hook="{{ cdp.note_loaded_before() }}",
        post_hook=[
            "{{ cdp.forget_erased({'email': 'email'}) }}",
            "{{ cdp.loaded_once(['email_event_id'], 'email_event_id') }}"
        ]
    )
}}

with

source as (

    select * from {{ source('raw_shop', 'email_events') }}
    {{ loaded_since_last_build() }}

),

renamed as (

    select
        event_id as email_event_id,
        {{ normalize_email('email') }} as email,
        {{ email_problem('email') }} as email_problem,
        campaign_id,
        variant,
        lower(event_type) as event_type,
        occurred_at,
        _loaded_at

    from source

)

select * from renamed
