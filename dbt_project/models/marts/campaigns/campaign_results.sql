{#- Campaign email results per campaign and variant: distinct-recipient counts, their rates
    and the orders the campaign's clicks won (int_campaigns__variant_results,
    int_campaigns__attributed_orders). Rates are shares of recipients, so each lies in [0, 1];
    the click-to-open rate has no value without opens. -#}

with

variants as (

    select * from {{ ref('int_campaigns__variant_results') }}

)

select
    campaign_id::string as campaign_id,
    variant::string as variant,
    recipients::bigint as recipients,
    delivered::bigint as delivered,
    unique_opens::bigint as unique_opens,
    unique_clicks::bigint as unique_clicks,
    unsubscribes::bigint as unsubscribes,
    (unique_opens / recipients)::double as open_rate,
    (unique_clicks / recipients)::double as click_rate,
    (unique_clicks / nullif(unique_opens, 0))::double as click_to_open_rate,
    conversions::bigint as conversions,
    conversion_revenue::decimal(18, 2) as conversion_revenue,
    first_sent_at::{{ cdp.type_instant() }} as first_sent_at,
    last_sent_at::{{ cdp.type_instant() }} as last_sent_at
from variants
