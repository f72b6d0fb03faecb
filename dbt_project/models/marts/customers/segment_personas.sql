{#- One row per segment of each segment type: who is in it, and a description written from
    what sets the segment apart from the whole base. Every person gets traits (gender, age
    band, B2B, gift buyer, device, favourite category, country, acquisition medium, shopping
    offline, buying again, opening emails, churn risk and the segments of the other types);
    a trait describes a segment when its share there is at least `personas.min_share` and at least
    `personas.min_lift` times its share in the base. The `personas.traits` strongest lifts
    are named with their numbers; the segment's name leads, so no two descriptions of one
    segment type are alike. -#}

{%- set settings = var('personas') %}
{%- set segment_types = ['rfm_segment', 'lifecycle_stage', 'value_tier', 'engagement_segment',
                         'customer_type', 'buyer_group', 'churn_risk', 'retention_segment'] %}
{%- set currency = reporting_currency() %}

with

members as (

    select
        segments.customer_key,
        segments.rfm_segment,
        segments.lifecycle_stage,
        segments.value_tier,
        segments.engagement_segment,
        segments.churn_risk,
        segments.retention_segment,
        profiles.customer_type,
        profiles.buyer_group,
        profiles.age,
        profiles.gender,
        profiles.interests,
        profiles.orders,
        profiles.revenue,
        profiles.preferred_channel,
        profiles.preferred_device,
        profiles.favorite_category,
        profiles.country,
        profiles.acquisition_medium,
        profiles.offline_orders,
        profiles.emails_sent,
        profiles.emails_opened
    from {{ ref('customer_segments') }} as segments
    inner join {{ ref('customer_profiles') }} as profiles using (customer_key)

),

-- Persons with the same segment of every type form a cell, and everything below is counted
-- per cell first: a segment's figures are then sums over its cells (a few thousand rows)
-- instead of a pass over every person for each of the segment types.
cells as (

    select
        {%- for segment_type in segment_types %}
        {{ segment_type }},
        {%- endfor %}
        -- numbered over the few thousand cells, not over every person
        row_number() over (order by {{ segment_types | join(', ') }}) as cell,
        count(*) as customers,
        sum(age) as age_sum,
        count(age) as age_known,
        count(*) filter (where gender = 'female') as women,
        count(*) filter (where gender = 'male') as men,
        count(*) filter (where gender in ('female', 'male', 'other')) as gender_known,
        sum(orders) as orders,
        sum(revenue) as revenue
    from members
    group by {{ segment_types | join(', ') }}

),

member_cells as (

    select members.*, cells.cell
    from members
    inner join cells
        on {% for segment_type in segment_types -%}
        coalesce(members.{{ segment_type }}, '') = coalesce(cells.{{ segment_type }}, '')
        {%- if not loop.last %}
        and {% endif %}
        {%- endfor %}

),

by_type as (

    -- (segment type, segment, cell) for every cell
    {%- for segment_type in segment_types %}
    select '{{ segment_type }}' as segment_type, {{ segment_type }} as segment, cells.*
    from cells
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

-- (person, family, trait): a family is never used to describe its own segment type
traits as (

    select customer_key, 'gender' as family,
           case gender when 'female' then 'women' else 'men' end as trait
    from members where gender in ('female', 'male')
    union all
    select customer_key, 'age', 'aged ' || case
            when age < 30 then 'under 30'
            when age >= 60 then '60 or over'
            else (floor(age / 10) * 10)::integer || '–' || (floor(age / 10) * 10 + 9)::integer
        end
    from members where age is not null
    union all
    select customer_key, 'customer_type', 'business buyers' from members
    where customer_type = 'B2B'
    union all
    select customer_key, 'buyer_group', 'buying mostly gifts' from members
    where buyer_group = 'indirect'
    union all
    select customer_key, 'device', 'mostly on ' || preferred_device from members
    where preferred_device is not null
    union all
    select customer_key, 'category', 'spending most on ' || favorite_category from members
    where favorite_category is not null
    union all
    select customer_key, 'country', 'in ' || country from members where country is not null
    union all
    select customer_key, 'medium', 'first came by ' || acquisition_medium from members
    where acquisition_medium is not null and acquisition_medium <> '(none)'
    union all
    select customer_key, 'channel', 'buying in stores or by phone' from members
    where offline_orders > 0
    union all
    select customer_key, 'frequency', 'buying again' from members where orders >= 2
    union all
    select customer_key, 'email', 'opening emails' from members where emails_opened > 0
    {%- for segment_type in ['lifecycle_stage', 'value_tier', 'engagement_segment',
                             'churn_risk'] %}
    union all
    select customer_key, '{{ segment_type }}',
           '{{ segment_type.replace("_", " ") }} ' || replace({{ segment_type }}, '_', ' ')
    from members
    -- "not a buyer yet" is said once, below, not as a trait
    where {{ segment_type }} not in ('prospect', 'none', 'unknown')
    {%- endfor %}

),

cell_traits as (

    select member_cells.cell, traits.family, traits.trait, count(*) as holders
    from traits
    inner join member_cells using (customer_key)
    group by member_cells.cell, traits.family, traits.trait

),

base as (

    select family, trait, sum(holders) / (select count(*) from members) as base_share
    from cell_traits
    group by family, trait

),

segment_traits as (

    select
        by_type.segment_type,
        by_type.segment,
        cell_traits.family,
        cell_traits.trait,
        sum(cell_traits.holders) as holders
    from by_type
    inner join cell_traits using (cell)
    where cell_traits.family <> by_type.segment_type
        -- a segment type's own dimension, said differently, is not news about it
        and not (by_type.segment_type = 'rfm_segment'
                 and cell_traits.family in ('lifecycle_stage', 'frequency'))
        and not (by_type.segment_type = 'value_tier' and cell_traits.family = 'frequency')
        and not (by_type.segment_type = 'engagement_segment' and cell_traits.family = 'email')
        and not (by_type.segment_type = 'retention_segment'
                 and cell_traits.family = 'value_tier')
    group by by_type.segment_type, by_type.segment, cell_traits.family, cell_traits.trait

),

summary as (

    select
        segment_type,
        segment,
        sum(customers)::bigint as customers,
        sum(customers) / sum(sum(customers)) over (partition by segment_type) as share,
        {{ cdp.round_half_up('sum(age_sum)::double / nullif(sum(age_known), 0)', 1) }}
            as avg_age,
        sum(women) as women,
        sum(men) as men,
        sum(gender_known) as gender_known,
        case
            when sum(orders) > 0
                then {{ cdp.round_half_up('sum(revenue)::double / sum(orders)', 2) }}
        end
            as avg_order_value,
        {{ cdp.round_half_up('sum(orders) / sum(customers)', 2) }} as orders_per_customer,
        case when sum(sum(revenue)) over (partition by segment_type) > 0
             then sum(revenue)::double / sum(sum(revenue)) over (partition by segment_type)
             else 0 end as revenue_share
    from by_type
    group by segment_type, segment

),

standouts as (

    select
        segment_traits.segment_type,
        segment_traits.segment,
        segment_traits.holders / summary.customers as segment_share,
        base.base_share,
        segment_traits.holders / summary.customers / base.base_share as lift,
        segment_traits.trait
    from segment_traits
    inner join summary using (segment_type, segment)
    inner join base using (family, trait)
    where segment_traits.holders / summary.customers >= {{ settings['min_share'] }}
        and segment_traits.holders / summary.customers
            >= {{ settings['min_lift'] }} * base.base_share
    qualify row_number() over (
        partition by segment_traits.segment_type, segment_traits.segment
        order by lift desc, segment_traits.trait
    ) <= {{ settings['traits'] }}

),

standout_text as (

    select
        segment_type,
        segment,
        {{ cdp.ordered_string_agg(
            cdp.round_half_up('100 * segment_share', 0) ~ "::integer || '% ' || trait
            || ' (' || " ~ cdp.round_half_up('lift', 1) ~ " || '× the base''s '
            || " ~ cdp.round_half_up('100 * base_share', 0) ~ "::integer || '%)'",
            ', ', ['lift desc', 'trait']) }} as text
    from standouts
    group by segment_type, segment

),

overall as (

    select
        {{ cdp.round_half_up('sum(revenue)::double / nullif(sum(orders), 0)', 2) }}
            as avg_order_value,
        {{ cdp.round_half_up('sum(orders) / count(*)', 2) }} as orders_per_customer
    from members

),

most_common as (

    -- the most frequent value per segment, ties broken alphabetically (mode() is not stable)
    select segment_type, segment, preferred_channel as value
    from (
        select by_type.segment_type, by_type.segment, counted.preferred_channel,
               sum(counted.n) as n
        from (
            select cell, preferred_channel, count(*) as n
            from member_cells
            where preferred_channel is not null
            group by cell, preferred_channel
        ) as counted
        inner join by_type using (cell)
        group by by_type.segment_type, by_type.segment, counted.preferred_channel
    ) as per_segment
    qualify row_number() over (
        partition by segment_type, segment order by n desc, preferred_channel
    ) = 1

),

cell_interests as (

    select cell, interest, count(*) as n
    from (select cell, {{ cdp.unnest_list('interests') }} as interest from member_cells)
    group by cell, interest

),

interests as (

    select
        segment_type,
        segment,
        {{ cdp.list_head(cdp.ordered_list('interest', ['-n', 'interest']), 3) }}
        as top_interests
    from (
        select by_type.segment_type, by_type.segment, cell_interests.interest,
               sum(cell_interests.n) as n
        from by_type
        inner join cell_interests using (cell)
        group by by_type.segment_type, by_type.segment, cell_interests.interest
    )
    group by segment_type, segment

),

described as (

    select
        summary.*,
        channel.value as preferred_channel,
        coalesce(interests.top_interests, {{ cdp.empty_list() }}) as top_interests,
        replace(summary.segment, '_', ' ') || ': '
        || summary.customers || ' people ('
        || {{ cdp.round_half_up('100 * summary.share', 1) }} || '%). '
        || coalesce(
            'Stand out: ' || standout_text.text || '. ',
            'Close to the base on every trait. '
        )
        || case
            when summary.orders_per_customer = 0 then 'Have not bought yet.'
            else printf('%.2f', summary.orders_per_customer) || ' orders each (base '
                || printf('%.2f', overall.orders_per_customer) || '), '
                || printf('%.2f', summary.avg_order_value) || ' {{ currency }} per order (base '
                || printf('%.2f', overall.avg_order_value) || ').'
        end as description
    from summary
    cross join overall
    left join standout_text using (segment_type, segment)
    left join interests using (segment_type, segment)
    left join most_common as channel
        on channel.segment_type = summary.segment_type and channel.segment = summary.segment

)

select
    segment_type,
    segment,
    customers,
    {{ cdp.round_half_up('share', 4) }} as share,
    avg_age,
    case
        when gender_known = 0 then 'unknown'
        when women >= men then 'female'
        else 'male'
    end as dominant_gender,
    top_interests,
    avg_order_value,
    orders_per_customer,
    {{ cdp.round_half_up('revenue_share', 4) }} as revenue_share,
    preferred_channel,
    description
from described
