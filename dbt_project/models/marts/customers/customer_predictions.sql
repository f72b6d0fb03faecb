{#- One row per buyer (a valid order up to today): the model inputs, the probability of still
    being a customer, expected orders in 90 days, expected order value and 12-month value in
    the reporting currency, and churn risk by `predictions.churn_risk`. Null predictions
    carry the reason in `note`. -#}

{%- set risk = var('predictions')['churn_risk'] %}

with

history as (

    select * from {{ ref('int_customers__purchase_history') }}

),

predictions as (

    select * from {{ ref('int_customers__predictions') }}

)

select
    history.customer_key,
    history.frequency::bigint as frequency,
    history.recency_days::bigint as recency_days,
    history.tenure_days::bigint as tenure_days,
    predictions.p_alive,
    predictions.expected_orders_90d,
    cast({{ cdp.round_half_up('predictions.expected_avg_order_value', 2) }} as decimal(18, 2))
        as expected_avg_order_value,
    cast({{ cdp.round_half_up('predictions.predicted_clv_12m', 2) }} as decimal(18, 2))
        as predicted_clv_12m,
    '{{ reporting_currency() }}' as currency,
    case
        when predictions.p_alive is null then null
        when predictions.p_alive < {{ risk['high_below'] }} then 'high'
        when predictions.p_alive < {{ risk['medium_below'] }} then 'medium'
        else 'low'
    end as churn_risk,
    {{ as_of_date() }} as fitted_at,
    predictions.note::string as note
from history
inner join predictions using (customer_key)
