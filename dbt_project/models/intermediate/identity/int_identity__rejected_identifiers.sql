{#- Identifier values that staging could not normalize, with the reason: counted in the
    identity audit so a bad feed is visible instead of silently unlinked. -#}

{%- set text = dbt.type_string() %}

with

problems as (

    select
        'shop.customers' as source,
        cast(customer_id as {{ text }}) as record_id,
        'email' as identifier_type,
        email_raw as raw_value,
        email_problem as problem
    from {{ ref('stg_shop__customers') }} where email_problem is not null
    union all
    select
        'shop.customers', cast(customer_id as {{ text }}), 'phone', phone_raw, phone_problem
    from {{ ref('stg_shop__customers') }} where phone_problem is not null
    union all
    select 'shop.orders', cast(order_id as {{ text }}), 'email', email_raw, email_problem
    from {{ ref('stg_shop__orders') }} where email_problem is not null
    union all
    select 'shop.orders', cast(order_id as {{ text }}), 'phone', phone_raw, phone_problem
    from {{ ref('stg_shop__orders') }} where phone_problem is not null
    union all
    select
        'sheets.survey_responses', cast(survey_row as {{ text }}), 'email', email_raw, email_problem
    from {{ ref('stg_sheets__survey_responses') }} where email_problem is not null
    union all
    select
        'sheets.survey_responses', cast(survey_row as {{ text }}), 'phone', phone_raw, phone_problem
    from {{ ref('stg_sheets__survey_responses') }} where phone_problem is not null

)

select * from problems
