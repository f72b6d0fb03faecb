{#- The golden record: one row per person (customer_key). int_customers__profiles holds it,
    kept from build to build per person; added here, for everyone on every build, what moves
    with the date (age) and the strongest interests by behaviour. -#}

with

inferred as (

    -- the strongest categories by behaviour (var `interests.top`; ties by category name)
    select customer_key, {{ cdp.ordered_list('category', ['category_rank']) }} as interests_inferred
    from {{ ref('int_customers__category_affinity') }}
    where category_rank <= {{ var('interests')['top'] }}
    group by customer_key

)

select
    profiles.customer_key,
    profiles.email,
    profiles.phone,
    profiles.first_name,
    profiles.last_name,
    profiles.birth_date,
    coalesce(
        {{ cdp.whole_years('profiles.birth_date', as_of_date()) }}, profiles.survey_age
    )::integer as age,
    profiles.gender,
    profiles.city,
    profiles.country,
    profiles.education,
    profiles.profession,
    profiles.income_band,
    profiles.interests,
    coalesce(inferred.interests_inferred, {{ cdp.empty_list() }}) as interests_inferred,
    profiles.personal_values,
    profiles.lifestyle,
    profiles.preferred_channel,
    profiles.customer_type,
    profiles.company_name,
    profiles.industry,
    profiles.company_size,
    profiles.buyer_group,
    profiles.first_seen_at,
    profiles.last_seen_at,
    profiles.sessions,
    profiles.page_views,
    profiles.orders,
    profiles.currency,
    profiles.revenue,
    profiles.avg_order_value,
    profiles.gift_orders,
    profiles.online_orders,
    profiles.offline_orders,
    profiles.first_order_at,
    profiles.last_order_at,
    profiles.favorite_category,
    profiles.preferred_device,
    profiles.acquisition_source,
    profiles.acquisition_medium,
    profiles.emails_sent,
    profiles.emails_bounced,
    profiles.emails_opened,
    profiles.emails_clicked,
    profiles.marketing_consent,
    profiles.identifiers
from {{ ref('int_customers__profiles') }} as profiles
left join inferred using (customer_key)
