{#- Segments of every person: RFM scores and the named RFM grid (seed rfm_segments),
    lifecycle stage, value tier, email engagement, churn risk (customer_predictions) and the
    retention segment it gives with the value tier. Thresholds: dbt_project.yml vars
    (`lifecycle`, `value_tiers`, `engagement`, `predictions`). -#}

{%- set predictions = var('predictions') %}
{%- set at_risk_levels = "'" ~ predictions['at_risk_levels'] | join("', '") ~ "'" %}
{%- set high_value_tiers = "'" ~ predictions['high_value_tiers'] | join("', '") ~ "'" %}

with

profiles as (

    select * from {{ ref('customer_profiles') }}

),

engagement as (

    select * from {{ ref('int_customers__email_engagement') }}

),

predictions as (

    select customer_key, churn_risk from {{ ref('customer_predictions') }}

),

buyers as (

    -- Scores are quintiles among buyers with ties kept together: a buyer scores 1 + the
    -- number of whole fifths of buyers with a strictly lower value (fewer orders, less
    -- revenue, an older last order by day), at most 5. Equal values score alike, the lowest
    -- value always scores 1, and a value held by many buyers (one order) leaves the scores
    -- just above it empty instead of spreading them arbitrarily.
    select
        customer_key,
        recency_days,
        orders,
        revenue,
        {%- for score, value in [('recency_score', '-recency_days'), ('frequency_score', 'orders'),
                                 ('monetary_score', 'revenue')] %}
        least(5, 1 + floor(5 * (rank() over (order by {{ value }}) - 1) / count(*) over ()))::bigint
            as {{ score }},
        {%- endfor %}
        percent_rank() over (order by revenue desc) as revenue_rank
    from (
        select
            *,
            {{ cdp.days_between('last_order_at::date', as_of_date()) }} as recency_days
        from profiles
        where orders > 0
    )

),

scored as (

    select
        profiles.customer_key,
        buyers.recency_score,
        buyers.frequency_score,
        buyers.monetary_score,
        coalesce(grid.rfm_segment, 'Prospect') as rfm_segment,
        case
            when buyers.customer_key is null then 'prospect'
            when {{ cdp.days_between('profiles.first_order_at::date', as_of_date()) }}
                <= {{ var('lifecycle')['new_within_days'] }} then 'new'
            when buyers.recency_days <= {{ var('lifecycle')['active_within_days'] }} then 'active'
            when buyers.recency_days <= {{ var('lifecycle')['at_risk_within_days'] }}
                then 'at_risk'
            else 'churned'
        end as lifecycle_stage,
        case
            when buyers.customer_key is null then 'none'
            {%- for tier, share in var('value_tiers').items() %}
            when buyers.revenue_rank < {{ share }} then '{{ tier }}'
            {%- endfor %}
            else 'low'
        end as value_tier,
        case
            when coalesce(engagement.emails_sent, 0) = 0 then 'never_mailed'
            when engagement.unsubscribed then 'unsubscribed'
            when engagement.emails_bounced >= {{ var('engagement')['bounces_to_unreachable'] }}
                and (engagement.last_reaction_at is null
                     or engagement.last_reaction_at < engagement.last_bounce_at) then 'bounced'
            when engagement.recent_clicks > 0 then 'clicking'
            when engagement.recent_opens > 0 then 'opening'
            when engagement.recent_sent > 0 then 'not_opening'
            else 'dormant'
        end as engagement_segment,
        profiles.favorite_category as top_category,
        case
            when buyers.customer_key is null then 'none'
            else coalesce(predictions.churn_risk, 'unknown')
        end as churn_risk
    from profiles
    left join buyers using (customer_key)
    left join {{ ref('rfm_segments') }} as grid
        on grid.recency_score = buyers.recency_score
        and grid.frequency_score = buyers.frequency_score
    left join engagement using (customer_key)
    left join predictions using (customer_key)

)

select
    *,
    case
        when churn_risk = 'none' then 'prospect'
        when churn_risk = 'unknown' then 'unpredicted'
        when churn_risk in ({{ at_risk_levels }}) and value_tier in ({{ high_value_tiers }})
            then 'high_value_at_risk'
        when churn_risk = 'high' then 'at_risk'
        else 'stable'
    end as retention_segment
from scored
