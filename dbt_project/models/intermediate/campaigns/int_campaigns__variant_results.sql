{#- Counts per campaign and variant, each of distinct recipients: the normalized emails that
    were sent it. What a recipient did counts once however often they did it, and only for
    recipients, so every count is at most `recipients`. A click counts as an open too (an email
    clicked was opened, whether or not its open pixel loaded), so clicks never outnumber opens.
    Events without a campaign or a valid email address are not counted. -#}

with

recipients as (

    select
        campaign_id,
        variant,
        email,
        first_sent_at,
        last_sent_at,
        bounced,
        opened,
        clicked,
        unsubscribed
    from {{ ref('int_campaigns__recipients') }}
    where sent

),

attributed_orders as (

    select * from {{ ref('int_campaigns__attributed_orders') }}

),

conversions as (

    select
        campaign_id,
        variant,
        email,
        sum(amount) as revenue
    from attributed_orders
    group by campaign_id, variant, email

),

per_recipient as (

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

)

select
    campaign_id,
    variant,
    count(*) as recipients,
    count(*) filter (where not bounced) as delivered,
    count(*) filter (where opened) as unique_opens,
    count(*) filter (where clicked) as unique_clicks,
    count(*) filter (where unsubscribed) as unsubscribes,
    count(*) filter (where converted) as conversions,
    coalesce(sum(revenue), 0) as conversion_revenue,
    min(first_sent_at) as first_sent_at,
    max(last_sent_at) as last_sent_at
from per_recipient
group by campaign_id, variant
