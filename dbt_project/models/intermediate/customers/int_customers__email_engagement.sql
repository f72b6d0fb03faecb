{#- Campaign email reactions per person (through the email address), all time and within the
    engagement window (var `engagement`), with what the engagement segment needs: sends, bounces, opens
    since the last bounce, unsubscribes. Kept from build to build for the persons not touched
    since (macros/persons.sql); the window moves with the date, and the persons with an event
    it passed over since the last build are touched. -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

{%- set window_start = cdp.email_window_start() %}

with

emails as (

    select identifier_value as email, customer_key
    from {{ ref('int_identity__customer_identities') }}
    where identifier_type = 'email' and {{ cdp.touched_persons_only('customer_key') }}

),

events as (

    select emails.customer_key, events.*
    from {{ ref('stg_shop__email_events') }} as events
    inner join emails using (email)

)

select
    customer_key,
    count(*) filter (where event_type = 'sent') as emails_sent,
    count(*) filter (where event_type = 'bounce') as emails_bounced,
    count(*) filter (where event_type = 'open') as emails_opened,
    count(*) filter (where event_type = 'click') as emails_clicked,
    count(*) filter (where event_type = 'sent' and occurred_at >= {{ window_start }})
        as recent_sent,
    count(*) filter (where event_type = 'open' and occurred_at >= {{ window_start }})
        as recent_opens,
    count(*) filter (where event_type = 'click' and occurred_at >= {{ window_start }})
        as recent_clicks,
    max(occurred_at) filter (where event_type = 'bounce') as last_bounce_at,
    max(occurred_at) filter (where event_type in ('open', 'click')) as last_reaction_at,
    bool_or(event_type = 'unsubscribe') as unsubscribed,
    bool_or(event_type = 'bounce') as bounced
from events
group by customer_key
