{#- Orders credited to a campaign email, one row per attributed order. A valid order (var
    `valid_order_statuses`) goes to the latest click before it by any email of the same
    stitched person, when it came within `attribution_days` of that click; an order whose
    latest earlier click is older, and an order before any click, goes to no campaign. Only
    clicks of recipients count (an email that was sent the campaign and variant). An order's
    attribution reads only its person's orders and emails: kept from build to build for the
    persons not touched since (macros/persons.sql). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

with

emails as (

    select
        identifier_value as email,
        customer_key
    from {{ ref('int_identity__customer_identities') }}
    where identifier_type = 'email' and {{ cdp.touched_persons_only('customer_key') }}

),

events as (

    select * from {{ ref('stg_shop__email_events') }}
    {%- if cdp.only_touched_persons() %}
    semi join emails using (email)
    {%- endif %}
    where campaign_id is not null and email is not null

),

sends as (

    select distinct
        campaign_id,
        variant,
        email
    from events
    where event_type = 'sent'

),

clicks as (

    select
        emails.customer_key,
        events.email_event_id,
        events.email,
        events.campaign_id,
        events.variant,
        events.occurred_at as clicked_at
    from events
    inner join sends
        on
            events.campaign_id = sends.campaign_id
            and events.variant is not distinct from sends.variant
            and events.email = sends.email
    inner join emails on events.email = emails.email
    where events.event_type = 'click'

),

valid_orders as (

    select
        order_id,
        customer_key,
        ordered_at,
        reporting_amount as amount
    from {{ ref('int_customers__orders') }}
    where is_valid and {{ cdp.touched_persons_only('customer_key') }}

),

latest_click as (

    select
        valid_orders.order_id,
        valid_orders.customer_key,
        valid_orders.ordered_at,
        valid_orders.amount,
        clicks.email,
        clicks.campaign_id,
        clicks.variant,
        clicks.clicked_at,
        row_number() over (
            partition by valid_orders.order_id
            order by clicks.clicked_at desc, clicks.email_event_id desc
        ) as click_rank
    from valid_orders
    inner join clicks
        on
            valid_orders.customer_key = clicks.customer_key
            and clicks.clicked_at < valid_orders.ordered_at

)

select
    order_id,
    customer_key,
    ordered_at,
    amount,
    email,
    campaign_id,
    variant,
    clicked_at
from latest_click
where
    click_rank = 1
    and ordered_at <= clicked_at + interval {{ var('attribution_days') }} day
