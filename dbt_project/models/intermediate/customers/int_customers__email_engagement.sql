{#- Campaign email reactions per person (through the email address), all time and recent. -#}

with

emails as (

    select identifier_value as email, customer_key
    from {{ source('identity', 'customer_identities') }}
    where identifier_type = 'email'

),

events as (

    select emails.customer_key, events.*
    from {{ ref('stg_shop__email_events') }} as events
    inner join emails using (email)

)

select
    customer_key,
    count(*) filter (where event_type = 'sent') as emails_sent,
    count(*) filter (where event_type = 'open') as emails_opened,
    count(*) filter (where event_type = 'click') as emails_clicked,
    count(*) filter (
        where event_type = 'sent'
        and occurred_at >= {{ as_of_date() }} - interval {{ var('engagement_window_days') }} day
    ) as recent_sent,
    count(*) filter (
        where event_type = 'open'
        and occurred_at >= {{ as_of_date() }} - interval {{ var('engagement_window_days') }} day
    ) as recent_opens,
    count(*) filter (
        where event_type = 'click'
        and occurred_at >= {{ as_of_date() }} - interval {{ var('engagement_window_days') }} day
    ) as recent_clicks,
    bool_or(event_type = 'unsubscribe') as unsubscribed,
    bool_or(event_type = 'bounce') as bounced
from events
group by customer_key
