{#- Every identifier seen in every source record: one row per (record, identifier). Records
    holding two or more identifiers are the evidence that links them (docs/sources.md). `order_id`
    is an internal identifier: it ties a guest checkout to the device its GA4 purchase event
    came from, and is never published.

    Kept from build to build: a build recomputes only the records whose source rows changed
    since the last one and replaces them whole (their old rows go, a record gone included),
    so a night writes its own records instead of all of them again. Which records that is
    comes from what the inputs looked like at the last build (`__marks`, cdp.input_marks):
    the shop's customers and orders loaded since; every record of an email with events loaded
    since, or of all emails when email events were replaced or deleted; every GA4 record of a
    device with device days loaded since, or held by a recent export day that was replaced
    (its devices are kept in `__recent_devices`); all survey records when the tab changed.
    Everything when that would not be exact: on the first build and a full refresh, when the
    project or its settings changed, when an identifier was erased, when an export day older
    than the recent ones was replaced or lost rows. The rows replaced, before and after, are
    listed in `__changes` for the models that read this one (cdp.observation_changes). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='replace_records',
        unique_key=['source', 'record_id'],
        post_hook="{{ cdp.keep_observations_state() }}"
    )
}}
-- depends_on: {{ source('privacy', 'erased_identifiers') }}

{%- set incremental = is_incremental() %}
{%- set redo = cdp.observations_redo() if incremental else none %}
{%- set partly = incremental and not redo.everything %}

with

{%- if partly %}

since as (

    select
        max(mark) filter (where input = 'loaded:stg_shop__customers')::timestamptz as customers,
        max(mark) filter (where input = 'loaded:stg_shop__orders')::timestamptz as orders,
        max(mark) filter (where input = 'loaded:stg_shop__email_events')::timestamptz
            as email_events,
        max(mark) filter (where input = 'loaded:int_ga4__device_days')::timestamptz
            as device_days
    from {{ cdp.state_relation('marks') }}

),

changed_devices as (

    select device_id from {{ ref('int_ga4__device_days') }}
    where _loaded_at > (select device_days from since)
    {%- if redo.changed_days %}
    union
    -- the devices a replaced export day held before
    select device_id from {{ cdp.state_relation('recent_devices') }}
    where export_day in (
        {%- for day in redo.changed_days %}'{{ day }}'::date{{ ', ' if not loop.last }}{% endfor -%}
    )
    {%- endif %}

),

changed_emails as (

    select email from {{ ref('stg_shop__email_events') }}
    where _loaded_at > (select email_events from since)

),

replaced as (

    -- records that may be gone, of a source recomputed whole or of a changed device: a row
    -- without an identifier names each, to be replaced like the records recomputed below
    -- (incremental strategy replace_records, macros/identity/observations.sql)
    select source, record_id from {{ this }}
    where source in ('ga4.events', 'ga4.purchase') and identifier_type = 'device'
        and identifier_value in (select device_id from changed_devices)
    {%- if redo.surveys %}
    union all
    select source, record_id from {{ this }} where source = 'sheets.survey_responses'
    {%- endif %}
    {%- if redo.emails %}
    union all
    select source, record_id from {{ this }} where source = 'shop.email_events'
    {%- endif %}

),

{%- elif incremental %}

-- everything is recomputed: a row without a source says so (replace_records)
replaced as (select null as source, null as record_id),

{%- endif %}

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
    {%- if partly %}
    where _loaded_at > (select customers from since)
    {%- endif %}

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
    {%- if partly %}
    where _loaded_at > (select orders from since)
    {%- endif %}

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
    {%- if partly %}
    where device_id in (select device_id from changed_devices)
    {%- endif %}
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
    {%- if partly %}
        and device_id in (select device_id from changed_devices)
    {%- endif %}
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
    {%- if partly and not redo.surveys %}
    where false
    {%- endif %}

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
    {%- if partly and not redo.emails %}
        and email in (select email from changed_emails)
    {%- endif %}
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
{%- if incremental %}
union all
select
    source,
    record_id,
    cast(null as {{ dbt.type_string() }}),
    cast(null as {{ dbt.type_string() }}),
    cast(null as timestamp with time zone),
    cast(null as timestamp with time zone)
from replaced
{%- endif %}
