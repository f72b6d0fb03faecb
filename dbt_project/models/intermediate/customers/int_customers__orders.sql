{#- Shop orders with the person who placed them, whether they count (business rules: paid,
    shipped or delivered orders count; cancelled and refunded ones count for nothing), and
    their amount in the reporting currency (CDP_REPORTING_CURRENCY). An order is converted
    with the latest rate of its currency on or before its day (UTC), at most
    `fx_max_rate_age_days` old; without one its `reporting_amount` is null, and the blocking
    check `fx_rates_cover_orders` stops the run before anything is published. Kept from build
    to build for the persons not touched since (macros/persons.sql): an order changed, or
    moved to another person, touches its persons; a changed fx_rates tab touches everyone. -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

{%- set reporting_currency = reporting_currency() %}

with

order_keys as (

    select * from {{ ref('int_identity__order_keys') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

orders as (

    select
        *,
        cast(ordered_at as date) as order_day
    from {{ ref('stg_shop__orders') }}
    {%- if cdp.only_touched_persons() %}
    semi join order_keys using (order_id)
    {%- endif %}

),

rates as (

    select
        rate_date,
        currency,
        rate,
        lead(rate_date) over (partition by currency order by rate_date) as next_rate_date
    from {{ ref('stg_sheets__fx_rates') }}
    where currency <> '{{ reporting_currency }}'

),

order_days as (

    -- the rate is looked up once per currency and day, not once per order
    select distinct currency, order_day
    from orders
    where currency <> '{{ reporting_currency }}'

),

day_rates as (

    select order_days.currency, order_days.order_day, rates.rate, rates.rate_date
    from order_days
    {{ cdp.join_latest_rate('order_days', 'rates') }}

),

converted as (

    select
        orders.*,
        case
            when orders.currency = '{{ reporting_currency }}' then 1.0
            when day_rates.rate_date
                >= orders.order_day - interval {{ var('fx_max_rate_age_days') }} day
                then day_rates.rate
        end as fx_rate,
        case when orders.currency <> '{{ reporting_currency }}' then day_rates.rate_date end
            as fx_rate_date
    from orders
    left join day_rates
        on orders.currency = day_rates.currency and orders.order_day = day_rates.order_day

)

select
    converted.*,
    cast(
        {{ cdp.round_half_up('converted.total_amount::double * converted.fx_rate', 2) }}
        as decimal(18, 2)
    ) as reporting_amount,
    '{{ reporting_currency }}' as reporting_currency,
    order_keys.customer_key,
    converted.status in (
        {%- for status in var('valid_order_statuses') -%}
            '{{ status }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    ) as is_valid
from converted
inner join order_keys using (order_id)
