{#- The recipients of campaign emails: one row per campaign, variant and normalized email that
    was sent it, with what the recipient did (each reaction once, however often) and the orders
    credited to it. A click counts as an open too (an email clicked was opened, whether or not
    its open pixel loaded). An email belongs to one stitched person, and so do its events and
    the orders its clicks won: kept from build to build for the persons not touched since
    (macros/persons.sql). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

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
    where events.campaign_id is not null

),

recipients as (

    select
        customer_key,
        campaign_id,
        variant,
        email,
        min(occurred_at) filter (where event_type = 'sent') as first_sent_at,
        max(occurred_at) filter (where event_type = 'sent') as last_sent_at,
        bool_or(event_type = 'bounce') as bounced,
        bool_or(event_type in ('open', 'click')) as opened,
        bool_or(event_type = 'click') as clicked,
        bool_or(event_type = 'unsubscribe') as unsubscribed
    from events
    group by customer_key, campaign_id, variant, email
    having bool_or(event_type = 'sent')

),

conversions as (

    select
        campaign_id,
        variant,
        email,
        sum(amount) as revenue
    from {{ ref('int_campaigns__attributed_orders') }}
    where {{ cdp.touched_persons_only('customer_key') }}
    group by campaign_id, variant, email

)

select
    recipients.*,
    conversions.email is not null as converted,
    conversions.revenue
from recipients
left join conversions
    on
        recipients.campaign_id = conversions.campaign_id
        and recipients.variant is not distinct from conversions.variant
        and recipients.email = conversions.email
