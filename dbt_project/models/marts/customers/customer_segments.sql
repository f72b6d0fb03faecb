{#- Segments of every person: RFM scores and the named RFM grid (seed rfm_segments),
    lifecycle stage, value tier and email engagement. Thresholds: dbt_project.yml vars. -#}

with

profiles as (

    select * from {{ ref('customer_profiles') }}

),

engagement as (

    select * from {{ ref('int_customers__email_engagement') }}

),

buyers as (

    select
        customer_key,
        date_diff('day', last_order_at::date, {{ as_of_date() }}) as recency_days,
        orders,
        revenue,
        -- quintiles among buyers; ties broken by the key so every run scores alike
        ntile(5) over (order by last_order_at, customer_key) as recency_score,
        ntile(5) over (order by orders, last_order_at, customer_key) as frequency_score,
        ntile(5) over (order by revenue, customer_key) as monetary_score,
        percent_rank() over (order by revenue desc, customer_key) as revenue_rank
    from profiles
    where orders > 0

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
            when date_diff('day', profiles.first_order_at::date, {{ as_of_date() }})
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
            when engagement.customer_key is null or engagement.unsubscribed
                or engagement.bounced then 'unreachable'
            when engagement.recent_clicks > 0 then 'clicker'
            when engagement.recent_opens > 0 then 'opener'
            when engagement.recent_sent > 0 then 'unengaged'
            else 'dormant'
        end as engagement_segment,
        profiles.favorite_category as top_category
    from profiles
    left join buyers using (customer_key)
    left join {{ ref('rfm_segments') }} as grid
        on grid.recency_score = buyers.recency_score
        and grid.frequency_score = buyers.frequency_score
    left join engagement using (customer_key)

)

select * from scored
