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
{%- set kept_state = cdp.state_exists(['marks', 'recent_devices']) %}

with

{%- if incremental %}

{%- if kept_state %}

marks as (select input, mark from {{ cdp.state_relation('marks') }}),

recent_devices as (select * from {{ cdp.state_relation('recent_devices') }}),

{%- else %}

-- no state kept (a table built before it was kept): everything
marks as (select cast(null as varchar) as input, cast(null as varchar) as mark where 1 = 0),

recent_devices as (
    select cast(null as date) as export_day, cast(null as varchar) as device_id where 1 = 0
),

{%- endif %}

now_marks as ({{ cdp.observations_marks() }}),

since as (

    select
        max(mark) filter (where input = 'loaded:stg_shop__customers')::timestamptz as customers,
        max(mark) filter (where input = 'loaded:stg_shop__orders')::timestamptz as orders,
        max(mark) filter (where input = 'loaded:stg_shop__email_events')::timestamptz
            as email_events,
        max(mark) filter (where input = 'loaded:int_ga4__device_days')::timestamptz
            as device_days
    from marks

),

changed_days as ({{ cdp.changed_export_days('marks', 'now_marks') }}),

redo as (

    select
        not exists (select 1 from marks)
        or exists (
            select input, mark from marks where input in ('definition', 'erased')
            except
            select input, mark from now_marks
        )
        or exists (
            select 1 from changed_days
            where export_day < (
                select min(export_day) from recent_devices
            )
                or not exists (select 1 from recent_devices)
        ) as everything,
        exists (
            select input, mark from marks where input like 'table:%'
            except
            select input, mark from now_marks
        ) as surveys,
        -- an email event replaced or deleted leaves fewer of the rows loaded until then
        (select max(mark) from marks where input = 'rows:stg_shop__email_events')
        <> (
            select count(*)::string from {{ ref('stg_shop__email_events') }}
            where _loaded_at <= (select email_events from since)
        ) as emails

),

changed_devices as (

    select device_id from {{ ref('int_ga4__device_days') }}
    where _loaded_at > (select device_days from since)
    union
    -- the devices a replaced export day held before
    select device_id from recent_devices
    where export_day in (select export_day from changed_days)

),

changed_emails as (

    select email from {{ ref('stg_shop__email_events') }}
    where _loaded_at > (select email_events from since)

),

replaced as (

    -- records that may be gone, of a source recomputed whole or of a changed device: a row
    -- without an identifier names each, to be replaced like the records recomputed below;
    -- one without a source says everything is (incremental strategy replace_records,
    -- macros/identity/observations.sql)
    select source, record_id from {{ this }}
    where (source = 'sheets.survey_responses' and (select surveys from redo))
        or (source = 'shop.email_events' and (select emails from redo))
        or (
            source in ('ga4.events', 'ga4.purchase') and identifier_type = 'device'
            and identifier_value in (select device_id from changed_devices)
        )
    union all
    select null, null where (select everything from redo)

),
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
    {%- if incremental %}
    where _loaded_at > (select customers from since) or (select everything from redo)
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
    {%- if incremental %}
    where _loaded_at > (select orders from since) or (select everything from redo)
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
    {%- if incremental %}
    where device_id in (select device_id from changed_devices) or (select everything from redo)
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
    {%- if incremental %}
        and (
            device_id in (select device_id from changed_devices)
            or (select everything from redo)
        )
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
    {%- if incremental %}
    where (select everything or surveys from redo)
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
    {%- if incremental %}
        and (
            email in (select email from changed_emails)
            or (select everything or emails from redo)
        )
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
