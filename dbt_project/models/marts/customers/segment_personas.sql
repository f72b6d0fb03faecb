{#- One row per segment of each segment type, summarizing who is in it, with a one-line
    description written from the numbers. -#}

with

members as (

    select
        segments.*,
        profiles.age,
        profiles.gender,
        profiles.interests,
        profiles.orders,
        profiles.revenue,
        profiles.preferred_channel,
        profiles.favorite_category,
        profiles.emails_opened,
        engagement.emails_sent
    from {{ ref('customer_segments') }} as segments
    inner join {{ ref('customer_profiles') }} as profiles using (customer_key)
    left join {{ ref('int_customers__email_engagement') }} as engagement using (customer_key)

),

by_type as (

    {%- set segment_types = ['rfm_segment', 'lifecycle_stage', 'value_tier',
                             'engagement_segment'] %}
    {%- for segment_type in segment_types %}
    select '{{ segment_type }}' as segment_type, {{ segment_type }} as segment, *
    from members
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

summary as (

    select
        segment_type,
        segment,
        count(*) as customers,
        count(*) / sum(count(*)) over (partition by segment_type) as share,
        round(avg(age), 1) as avg_age,
        count(*) filter (where gender = 'female') as women,
        count(*) filter (where gender = 'male') as men,
        count(*) filter (where gender in ('female', 'male', 'other')) as gender_known,
        case when sum(orders) > 0 then round(sum(revenue) / sum(orders), 2) end
            as avg_order_value,
        round(sum(orders) / count(*), 2) as orders_per_customer,
        case when sum(sum(revenue)) over (partition by segment_type) > 0
             then sum(revenue) / sum(sum(revenue)) over (partition by segment_type)
             else 0 end as revenue_share,
        sum(emails_opened) / nullif(sum(emails_sent), 0) as open_rate
    from by_type
    group by segment_type, segment

),

most_common as (

    -- the most frequent value per segment, ties broken alphabetically (mode() is not stable)
    {%- for column in ['preferred_channel', 'favorite_category'] %}
    select segment_type, segment, '{{ column }}' as attribute, {{ column }} as value
    from by_type
    where {{ column }} is not null
    group by segment_type, segment, {{ column }}
    qualify row_number() over (
        partition by segment_type, segment order by count(*) desc, {{ column }}
    ) = 1
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

member_interests as (

    select segment_type, segment, unnest(interests) as interest
    from by_type

),

interests as (

    select segment_type, segment, list(interest order by n desc, interest)[1:3] as top_interests
    from (
        select segment_type, segment, interest, count(*) as n
        from member_interests
        group by segment_type, segment, interest
    )
    group by segment_type, segment

),

described as (

    select
        summary.*,
        channel.value as preferred_channel,
        category.value as favorite_category,
        coalesce(interests.top_interests, []) as top_interests,
        case
            when gender_known = 0 then 'People of unknown gender'
            when women >= 0.6 * gender_known then 'Mostly women'
            when men >= 0.6 * gender_known then 'Mostly men'
            else 'Women and men'
        end
        || case
            when avg_age is null then ''
            else ' aged ' || (floor(avg_age / 10) * 10)::integer || '–'
                || (floor(avg_age / 10) * 10 + 9)::integer
        end
        || case
            when orders_per_customer = 0 then ' who have not bought yet'
            else ' who buy ' || coalesce(favorite_category, 'across categories')
                || case when orders_per_customer >= 4 then ' often'
                        when orders_per_customer >= 1.5 then ' now and then'
                        else ' rarely' end
        end
        || case
            when open_rate is null then ' and get no campaign emails'
            when open_rate >= 0.5 then ' and open most emails'
            when open_rate >= 0.2 then ' and open some emails'
            else ' and rarely open emails'
        end
        || '.' as description
    from summary
    left join interests using (segment_type, segment)
    left join most_common as channel
        on channel.segment_type = summary.segment_type and channel.segment = summary.segment
        and channel.attribute = 'preferred_channel'
    left join most_common as category
        on category.segment_type = summary.segment_type and category.segment = summary.segment
        and category.attribute = 'favorite_category'

)

select
    segment_type,
    segment,
    customers,
    round(share, 4) as share,
    avg_age,
    case
        when gender_known = 0 then 'unknown'
        when women >= men then 'female'
        else 'male'
    end as dominant_gender,
    top_interests,
    avg_order_value,
    orders_per_customer,
    round(revenue_share, 4) as revenue_share,
    preferred_channel,
    description
from described
