{#- Does behaviour reflect what people say? Among the people with both survey interests and
    interests inferred from behaviour, per survey interest: how many have its product category
    (seed interest_categories) among their inferred interests, against the share expected by
    chance, the share of all these people who have that category inferred. The row 'all'
    counts each person once: agreeing when any of their interests' categories is inferred,
    expected by chance as the share of these people whose inferred interests hold any of the
    person's categories, averaged over the persons. Interests without a category are left
    out. -#}

with

people as (

    select customer_key, interests, interests_inferred
    from {{ ref('customer_profiles') }}
    where {{ cdp.list_size('interests') }} > 0 and {{ cdp.list_size('interests_inferred') }} > 0

),

stated as (

    select customer_key, {{ cdp.unnest_list('interests') }} as interest, interests_inferred
    from people

),

mapped as (

    -- one row per person and survey interest that points to a product category
    select
        stated.customer_key,
        stated.interest,
        mapping.category,
        array_contains(stated.interests_inferred, mapping.category) as agrees
    from stated
    inner join {{ ref('interest_categories') }} as mapping using (interest)

),

base_rates as (

    -- how many of the people have each category inferred
    select category, count(*) as people
    from (select {{ cdp.unnest_list('interests_inferred') }} as category from people)
    group by category

),

by_interest as (

    select
        mapped.interest as survey_interest,
        mapped.category,
        count(*) as people,
        count(*) filter (where mapped.agrees) as agreeing,
        coalesce(any_value(base_rates.people), 0) / (select count(*) from people)
            as expected_by_chance
    from mapped
    left join base_rates using (category)
    group by mapped.interest, mapped.category

),

person_categories as (

    select
        customer_key,
        array_sort(array_distinct(array_agg(category))) as categories,
        bool_or(agrees) as agrees
    from mapped
    group by customer_key

),

category_sets as (

    select categories, count(*) as people, count(*) filter (where agrees) as agreeing
    from person_categories
    group by categories

),

inferred_sets as (

    select interests_inferred, count(*) as people
    from people
    group by interests_inferred

),

set_chances as (

    -- a handful of distinct sets on either side, so this pairs them all
    select
        category_sets.categories,
        any_value(category_sets.people) as people,
        any_value(category_sets.agreeing) as agreeing,
        coalesce(
            sum(inferred_sets.people) filter (
                where {{ cdp.lists_overlap('category_sets.categories',
                                           'inferred_sets.interests_inferred') }}
            ),
            0
        ) / (select count(*) from people) as chance
    from category_sets
    cross join inferred_sets
    group by category_sets.categories

),

overall as (

    select
        'all' as survey_interest,
        null as category,
        sum(people)::bigint as people,
        sum(agreeing)::bigint as agreeing,
        sum(people * chance) / sum(people) as expected_by_chance
    from set_chances

),

feedback as (

    select * from by_interest
    union all
    select * from overall where people > 0

)

select
    survey_interest,
    category::string as category,
    people,
    agreeing,
    {{ cdp.round_half_up('agreeing / people', 4) }} as agreement,
    {{ cdp.round_half_up('expected_by_chance', 4) }} as expected_by_chance,
    {{ cdp.round_half_up('agreeing / people / nullif(expected_by_chance, 0)', 2) }} as lift
from feedback
