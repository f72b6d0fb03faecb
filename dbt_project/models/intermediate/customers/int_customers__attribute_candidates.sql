{#- Every value any source offers for a profile attribute, with its source and time (a value
    on many orders once, at the newest); the profile keeps one per attribute by the
    `survivorship` var (dbt_project.yml). Kept from build to build for the persons not
    touched since (macros/persons.sql). -#}
{{ config(**cdp.per_person_model()) }}
-- depends_on: {{ ref('int_customers__touched_persons') }}

with

identities as (

    select * from {{ ref('int_identity__customer_identities') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

accounts as (

    select customers.*, identities.customer_key
    from {{ ref('stg_shop__customers') }} as customers
    inner join identities
        on identities.identifier_type = 'customer_id'
        and identities.identifier_value = customers.customer_id::string

),

orders as (

    select * from {{ ref('int_customers__orders') }}
    where {{ cdp.touched_persons_only('customer_key') }}

),

surveys as (

    select surveys.*, coalesce(by_email.customer_key, by_phone.customer_key) as customer_key
    from {{ ref('stg_sheets__survey_responses') }} as surveys
    left join identities as by_email
        on by_email.identifier_type = 'email' and by_email.identifier_value = surveys.email
    left join identities as by_phone
        on by_phone.identifier_type = 'phone' and by_phone.identifier_value = surveys.phone

),

candidates as (

    {%- set account_attributes = ['email', 'phone', 'first_name', 'last_name', 'birth_date',
                                  'city', 'country', 'company_name', 'marketing_consent'] %}
    {%- for attribute in account_attributes %}
    select customer_key, '{{ attribute }}' as attribute, {{ attribute }}::string as value,
           'shop_account' as source, updated_at as observed_at
    from accounts
    union all
    {%- endfor %}
    select customer_key, 'gender', {{ normalize_gender('gender_raw') }}, 'shop_account', updated_at
    from accounts
    {%- set order_attributes = [
        ('email', 'email'), ('phone', 'phone'), ('country', 'ship_country')
    ] %}
    {%- for attribute, column in order_attributes %}
    union all
    -- a person's orders repeat the same few values: each once, with the newest order's time
    select customer_key, '{{ attribute }}', {{ column }}, 'shop_order', max(updated_at)
    from orders
    group by customer_key, {{ column }}
    {%- endfor %}
    {%- for attribute in ['email', 'phone', 'education', 'profession', 'income_band',
                          'personal_values', 'lifestyle', 'preferred_channel', 'buys_for'] %}
    union all
    select customer_key, '{{ attribute }}', {{ attribute }}, 'survey', submitted_at from surveys
    {%- endfor %}
    union all
    select customer_key, 'interests', interests_raw, 'survey', submitted_at from surveys
    union all
    select customer_key, 'survey_age', age::string, 'survey', submitted_at from surveys
    union all
    select customer_key, 'gender', {{ normalize_gender('gender_raw') }}, 'survey', submitted_at
    from surveys
    union all
    select
        identities.customer_key, 'city', device_cities.geo_city, 'ga4', max(device_cities.seen_at)
    from (
        -- one row per device and city before the join, not one per event
        select device_id, geo_city, max(last_event_at) as seen_at
        from {{ ref('int_ga4__device_days') }}
        where geo_city is not null
        {%- if cdp.only_touched_persons() %}
            and device_id in (
                select identifier_value from identities where identifier_type = 'device'
            )
        {%- endif %}
        group by device_id, geo_city
    ) as device_cities
    inner join identities
        on identities.identifier_type = 'device'
        and identities.identifier_value = device_cities.device_id
    group by identities.customer_key, device_cities.geo_city

)

select
    customer_key,
    attribute,
    value,
    source,
    observed_at,
    {{ survivorship_rank('attribute', 'source') }} as source_rank
from candidates
where customer_key is not null and value is not null
