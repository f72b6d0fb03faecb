{#- One row per buyer as the purchase and spend models read it, in days (the BTYD
    convention): orders on one day are one purchase; `frequency` counts the purchase days
    after the first, `recency_days` runs from the first to the last purchase day,
    `tenure_days` from the first purchase day to today, and `monetary_value` is the mean
    amount (reporting currency) of the purchase days after the first. Valid orders up to
    today only, so a run for an earlier day sees what was known then. -#}

with

purchase_days as (

    select customer_key, order_day, sum(reporting_amount) as amount
    from {{ ref('int_customers__orders') }}
    where is_valid and order_day <= {{ as_of_date() }}
    group by customer_key, order_day

),

numbered as (

    select
        *,
        min(order_day) over (partition by customer_key) as first_day
    from purchase_days

)

select
    customer_key,
    count(*) - 1 as frequency,
    {{ cdp.days_between('min(order_day)', 'max(order_day)') }} as recency_days,
    {{ cdp.days_between('min(order_day)', as_of_date()) }} as tenure_days,
    avg(amount) filter (where order_day > first_day) as monetary_value
from numbered
group by customer_key
