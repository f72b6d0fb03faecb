{#- The golden record: one row per person (customer_key). Attributes by declared
    survivorship (var `survivorship`), behaviour by the business rules (docs/sources.md).
    Everything here but what moves with the date or with every person's interests, which
    customer_profiles adds: kept from build to build for the persons not touched since
    (macros/persons.sql). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

with

identities as (

    select * from {{ ref('int_identity__customer_identities') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

persons as (

    select
        customer_key,
        count(*) as identifiers,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from identities
    group by customer_key

),

attributes as (

    {{ survivors('(select * from ' ~ ref('int_customers__attribute_candidates') ~ ' where '
                  ~ cdp.touched_persons_only('customer_key') ~ ')') }}

),

b2b_accounts as (

    select * from {{ ref('stg_sheets__b2b_accounts') }}

),

b2b_by_domain as (

    select
        identities.customer_key,
        b2b_accounts.company_name,
        b2b_accounts.industry,
        b2b_accounts.company_size
    from identities
    inner join b2b_accounts
        on identities.identifier_type = 'email'
        and split_part(identities.identifier_value, '@', 2) = b2b_accounts.email_domain
    qualify row_number() over (
        partition by identities.customer_key order by b2b_accounts.company_name
    ) = 1

),

opt_outs as (

    -- one row per identifier a request names, so that identities meet it by equality
    select distinct identities.customer_key
    from (
        select 'email' as identifier_type, email as identifier_value
        from {{ ref('stg_sheets__privacy_requests') }}
        where request_type = 'marketing_opt_out'
        union all
        select 'phone', phone
        from {{ ref('stg_sheets__privacy_requests') }}
        where request_type = 'marketing_opt_out'
    ) as requested
    inner join identities using (identifier_type, identifier_value)

),

purchases as (

    select * from {{ ref('int_customers__purchases') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

web as (

    select * from {{ ref('int_customers__web_activity') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

email as (

    select * from {{ ref('int_customers__email_engagement') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

joined as (

    select
        persons.customer_key,
        attributes.email,
        attributes.phone,
        attributes.first_name,
        attributes.last_name,
        attributes.birth_date::date as birth_date,
        attributes.survey_age::integer as survey_age,
        coalesce(attributes.gender, 'unknown') as gender,
        attributes.city,
        attributes.country,
        attributes.education,
        attributes.profession,
        attributes.income_band,
        coalesce(
            {{ cdp.split_tags('attributes.interests', '[,;]') }},
            {{ cdp.empty_list() }}
        ) as interests,
        attributes.personal_values,
        attributes.lifestyle,
        attributes.preferred_channel,
        case when attributes.company_name is not null or b2b_by_domain.customer_key is not null
             then 'B2B' else 'B2C' end as customer_type,
        coalesce(attributes.company_name, b2b_by_domain.company_name) as company_name,
        coalesce(b2b_by_domain.industry, b2b_by_name.industry) as industry,
        coalesce(b2b_by_domain.company_size, b2b_by_name.company_size) as company_size,
        case when attributes.buys_for = 'gift'
                  or coalesce(purchases.gift_orders_placed, 0) * 2
                      > coalesce(purchases.orders_placed, 0)
             then 'indirect' else 'primary' end as buyer_group,
        persons.first_seen_at,
        persons.last_seen_at,
        coalesce(web.sessions, 0) as sessions,
        coalesce(web.page_views, 0) as page_views,
        coalesce(purchases.orders, 0) as orders,
        '{{ reporting_currency() }}' as currency,
        coalesce(purchases.revenue, 0)::decimal(18, 2) as revenue,
        purchases.avg_order_value::decimal(18, 2) as avg_order_value,
        coalesce(purchases.gift_orders, 0) as gift_orders,
        coalesce(purchases.online_orders, 0) as online_orders,
        coalesce(purchases.offline_orders, 0) as offline_orders,
        purchases.first_order_at,
        purchases.last_order_at,
        purchases.favorite_category,
        web.preferred_device,
        web.acquisition_source,
        web.acquisition_medium,
        coalesce(email.emails_sent, 0) as emails_sent,
        coalesce(email.emails_bounced, 0) as emails_bounced,
        coalesce(email.emails_opened, 0) as emails_opened,
        coalesce(email.emails_clicked, 0) as emails_clicked,
        coalesce(attributes.marketing_consent::boolean, false)
            and opt_outs.customer_key is null
            and not coalesce(email.unsubscribed, false) as marketing_consent,
        persons.identifiers
    from persons
    left join attributes using (customer_key)
    left join b2b_by_domain using (customer_key)
    left join b2b_accounts as b2b_by_name
        on lower(b2b_by_name.company_name) = lower(attributes.company_name)
    left join opt_outs using (customer_key)
    left join purchases using (customer_key)
    left join web using (customer_key)
    left join email using (customer_key)

)

select * from joined
