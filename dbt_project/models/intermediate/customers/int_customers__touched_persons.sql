{#- The persons whose per-person models must be recomputed (macros/persons.sql): every person,
    new or gone, of an identifier whose person or first or last sighting changed since the last
    build, the persons of the shop rows and GA4 device days loaded since (and of the devices
    whose GA4 purchases carry the id of an order loaded since), and those with an
    email event the engagement window passed over as the date moved. Everyone when
    that would not be exact: on the first build and a full refresh, when the project or its
    settings changed (CDP_BUILD_DEFINITION), when a Sheets tab or the product catalog changed,
    when a GA4 export day older than the recent ones was replaced or lost rows (a recent day
    replaced, as intraday shards are, costs the persons of the devices it held), or when email
    events were replaced or deleted; then a row without a person also says: forget every row kept.
    Persons listed by a build whose per-person models did not all finish stay listed. -#}
{{
    config(
        materialized='table',
        pre_hook="{{ cdp.compare_identifier_keys() }}",
        post_hook="{{ cdp.keep_touched_persons_state() }}"
    )
}}
-- depends_on: {{ ref('stg_ga4__items') }}

{%- set marks_state = cdp.state_relation('marks') %}
{%- set recent_state = cdp.state_relation('recent_devices') %}
{%- set incremental = cdp.touched_persons_compared() %}

with

identifiers as (

    select node, identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
    from {{ ref('int_identity__identifier_keys') }}

),

{%- if incremental %}

marks as (select * from {{ marks_state }}),

now_marks as ({{ cdp.touched_persons_marks() }}),

since as (

    select
        max(mark) filter (where input = 'loaded:stg_shop__orders')::timestamptz as orders,
        max(mark) filter (where input = 'loaded:stg_shop__order_items')::timestamptz as items,
        max(mark) filter (where input = 'loaded:stg_shop__customers')::timestamptz as customers,
        max(mark) filter (where input = 'loaded:stg_shop__email_events')::timestamptz
            as email_events,
        max(mark) filter (where input = 'loaded:int_ga4__device_days')::timestamptz
            as device_days,
        max(mark) filter (where input = 'email_window_start')::timestamp as window_start
    from marks

),

changed_days as ({{ cdp.changed_export_days('marks', 'now_marks') }}),

redo_everyone as (

    -- marks compared whole: the definition and the small tables; an export day changed
    -- whose devices before were not kept; and no email event may have gone or been replaced
    select
        exists (
            select input, mark from marks
            where input = 'definition' or input like 'table:%'
            except
            select input, mark from now_marks
        )
        or {{ cdp.older_export_day_changed('changed_days', recent_state) }}
        or {{ cdp.email_events_lost('marks') }} as everyone

),

changed_identifiers as (

    -- an identifier new, gone, or with another person or sighting: both its persons
    select now_key, before_key from {{ cdp.state_relation('identifier_changes') }}

),

loaded_identifiers as materialized (

    -- materialized: DuckDB then knows how few rows these are, and joins them to the
    -- identifiers by looking each one up instead of hashing all identifiers

    select 'order_id' as identifier_type, order_id::string as identifier_value
    from {{ ref('stg_shop__orders') }}
    where _loaded_at > (select orders from since)
    union all
    -- the devices of GA4 purchases of an order loaded since, whoever's they are: the order's
    -- lines count for the purchase now, not GA4's items (int_customers__category_affinity)
    select 'device', device_id
    from {{ ref('stg_ga4__items') }}
    where event_name = 'purchase' and device_id is not null
        and transaction_id in (
            select order_id::string from {{ ref('stg_shop__orders') }}
            where _loaded_at > (select orders from since)
        )
    union all
    select 'order_id', order_id::string
    from {{ ref('stg_shop__order_items') }}
    where _loaded_at > (select items from since)
    union all
    select 'customer_id', customer_id::string
    from {{ ref('stg_shop__customers') }}
    where _loaded_at > (select customers from since)
    union all
    select 'email', email
    from {{ ref('stg_shop__email_events') }}
    where _loaded_at > (select email_events from since) and email is not null
    union all
    select 'device', device_id
    from {{ ref('int_ga4__device_days') }}
    where _loaded_at > (select device_days from since)
    union all
    -- the devices a replaced export day held before: one that is not in it any more is
    -- nowhere in what was loaded since
    select 'device', device_id
    from {{ recent_state }}
    where export_day in (select export_day from changed_days)
    union all
    -- email events the engagement window passed over: on one side of its start then, on the
    -- other now
    select 'email', email
    from {{ ref('stg_shop__email_events') }}
    where email is not null
        and (occurred_at >= (select window_start from since))
        <> (occurred_at >= {{ cdp.email_window_start() }})

),

touched as (

    select now_key as customer_key from changed_identifiers where now_key is not null
    union
    select before_key from changed_identifiers where before_key is not null
    union
    select identifiers.customer_key
    from identifiers
    semi join (
        -- by node number: a number is cheaper to look up than two strings
        select {{ cdp.identifier_number('identifier_type', 'identifier_value') }} as node
        from loaded_identifiers
    ) as loaded using (node)
    union
    -- listed by a build whose per-person models did not all finish
    select customer_key from {{ this }}
    where not {{ cdp.every_per_person_model_applied(
        'marks', "(select mark from marks where input = 'this_build:invocation')") }}
    union
    select customer_key from identifiers where (select everyone from redo_everyone)
    union
    -- no person: forget every row kept (as on a first build, below)
    select null where (select everyone from redo_everyone)

)

{%- else %}

touched as (

    select distinct customer_key from identifiers
    union all
    select null

)

{%- endif %}

select customer_key from touched
