{#- Kept from build to build (macros/incremental.sql): rebuilt only when the tab was loaded
    again, since normalizing its phone numbers is what most of a night's staging costs. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_replaced_tab_rows(source('raw_sheets', 'survey_responses'), 'survey_row') if is_incremental() }}"
    )
}}

with

source as (

    select * from {{ source('raw_sheets', 'survey_responses') }}
    {{ loaded_since_last_build(checked=false) }}

),

renamed as (

    select
        _row_number as survey_row,
        {{ parse_sheet_timestamp('submitted_at') }} as submitted_at,
        {{ normalize_email('email') }} as email,
        email as email_raw,
        {{ email_problem('email') }} as email_problem,
        {{ normalize_phone('phone') }} as phone,
        {{ phone_problem('phone') }} as phone_problem,
        {{ clean_text('phone') }} as phone_raw,
        try_cast({{ clean_text('age') }} as integer) as age,
        {{ clean_text('gender') }} as gender_raw,
        lower({{ clean_text('education') }}) as education,
        lower({{ clean_text('profession') }}) as profession,
        {{ clean_text('income_band') }} as income_band,
        {{ clean_text('interests') }} as interests_raw,
        lower({{ clean_text(adapter.quote('values')) }}) as personal_values,
        lower({{ clean_text('lifestyle') }}) as lifestyle,
        lower({{ clean_text('preferred_channel') }}) as preferred_channel,
        lower({{ clean_text('buys_for') }}) as buys_for,
        _loaded_at

    from source

)

select * from renamed
