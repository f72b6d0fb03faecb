{#- Every identifier seen in every source record: one row per (record, identifier). Records
    holding two or more identifiers are the evidence that links them (docs/sources.md). `order_id`
    is an internal identifier: it ties a guest checkout to the device its GA4 purchase event
    came from, and is never published. -#}

with

customers as (

    select
        'shop.customers' as source,
        cast(customer_id as {{ dbt.type_string() }}) as record_id,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(null as {{ dbt.type_string() }}) as order_id
    from {{ ref('stg_shop__customers') }}

),

orders as (

    select
        'shop.orders' as source,
        cast(order_id as {{ dbt.type_string() }}) as record_id,
        ordered_at as first_seen_at,
        updated_at as last_seen_at,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(order_id as {{ dbt.type_string() }}) as order_id
    from {{ ref('stg_shop__orders') }}

),

ga4_logins as (

    select
        'ga4.events' as source,
        device_id || '|' || coalesce(user_id, '') as record_id,
        min(first_event_at) as first_seen_at,
        max(last_event_at) as last_seen_at,
        user_id as customer_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        device_id as device,
        cast(null as {{ dbt.type_string() }}) as order_id
    from {{ ref('int_ga4__device_days') }}
    group by device_id, user_id

),

ga4_purchases as (

    select
        'ga4.purchase' as source,
        device_id || '|' || transaction_id as record_id,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        device_id as device,
        transaction_id as order_id
    from {{ ref('stg_ga4__events') }}
    where event_name = 'purchase' and device_id is not null and transaction_id is not null
    group by device_id, transaction_id

),

surveys as (

    select
        'sheets.survey_responses' as source,
        cast(survey_row as {{ dbt.type_string() }}) as record_id,
        submitted_at as first_seen_at,
        submitted_at as last_seen_at,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(null as {{ dbt.type_string() }}) as order_id
    from {{ ref('stg_sheets__survey_responses') }}

),

email_recipients as (

    select
        'shop.email_events' as source,
        email as record_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(null as {{ dbt.type_string() }}) as order_id
    from {{ ref('stg_shop__email_events') }}
    where email is not null
    group by email

),

records as (

    select * from customers
    union all select * from orders
    union all select * from ga4_logins
    union all select * from ga4_purchases
    union all select * from surveys
    union all select * from email_recipients

),

identifiers as (

    {{ cdp.identifiers_by_type(
        'records', ['customer_id', 'email', 'phone', 'device', 'order_id']
    ) }}

)

select * from identifiers
