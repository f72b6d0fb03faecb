{#- Up to `recommendations.per_customer` products per person that they have not bought:
    items bought by the same people as their own purchases (co-purchase, cosine-normalized),
    plus the most bought items of their strongest categories by behaviour (the `interests.top`
    categories of int_customers__category_affinity: views, cart adds and purchases, decayed),
    weighted by each category's share of their interest. So people who browse but have not
    bought get picks from the categories they browse; only people without any signal (no
    valid order, no product seen in GA4) get the best sellers. -#}

{%- set settings = var('recommendations') %}

with

-- Persons and products get small integer ids for the heavy joins below (tens of millions of
-- candidate rows at a million persons); customer_key and sku come back at the end. A
-- product's id follows its sku, so ties still go to the smallest sku.
catalog as (

    select row_number() over (order by sku) as item, product_id, sku, product_name, category
    from {{ ref('stg_shop__products') }}

),

affinity as (

    select * from {{ ref('int_customers__category_affinity') }}

),

persons as (

    -- everyone with a signal: a valid order, or a product seen, added or bought in GA4
    select customer_key, row_number() over (order by customer_key) as person
    from (
        select customer_key from {{ ref('int_customers__orders') }} where is_valid
        union
        select customer_key from affinity where category_rank = 1
    )

),

purchases as (

    select persons.person, catalog.item, catalog.category
    from {{ ref('int_customers__products_bought') }}
    inner join persons using (customer_key)
    inner join catalog using (product_id)

),

products as (

    select catalog.item, catalog.sku, catalog.product_name, catalog.category,
           count(distinct purchases.person) as buyers
    from catalog
    left join purchases using (item)
    group by catalog.item, catalog.sku, catalog.product_name, catalog.category

),

co_purchase as (

    -- counted from build to build (int_customers__co_purchases), not from every purchase
    select bought.item as bought_item, candidate.item, co_purchases.together
    from {{ ref('int_customers__co_purchases') }} as co_purchases
    inner join catalog as bought on bought.product_id = co_purchases.product_id
    inner join catalog as candidate on candidate.product_id = co_purchases.other_product_id

),

similarity as (

    select co_purchase.bought_item, co_purchase.item,
           co_purchase.together / sqrt(bought.buyers * candidate.buyers) as similarity
    from co_purchase
    inner join products as bought on bought.item = co_purchase.bought_item
    inner join products as candidate on candidate.item = co_purchase.item
    -- only each product's closest neighbours: every purchase fans out to this many candidates
    qualify row_number() over (
        partition by co_purchase.bought_item order by similarity desc, co_purchase.item
    ) <= {{ settings['similar_per_product'] }}

),

by_co_purchase as (

    -- the product bought that explains a candidate is found for the picks only (below): the
    -- tens of millions of candidates here carry nothing but their score
    select purchases.person, similarity.item, sum(similarity.similarity) as score
    from purchases
    inner join similarity on similarity.bought_item = purchases.item
    group by purchases.person, similarity.item

),

category_share as (

    -- the person's strongest categories by behaviour, browsing included
    select
        persons.person,
        affinity.category,
        affinity.share,
        affinity.purchases > 0 as category_bought
    from affinity
    inner join persons using (customer_key)
    where affinity.category_rank <= {{ var('interests')['top'] }}

),

category_favorites as (

    select item, category, buyers / max(buyers) over () as popularity
    from products
    where buyers > 0
    qualify row_number() over (partition by category order by buyers desc, item)
        <= {{ settings['candidates_per_category'] }}

),

by_category as (

    select category_share.person, category_favorites.item,
           {{ settings['category_affinity_weight'] }} * category_share.share
               * category_favorites.popularity as score,
           category_share.category,
           category_share.category_bought
    from category_share
    inner join category_favorites using (category)

),

best_sellers as (

    select item, buyers / max(buyers) over () as score,
           row_number() over (order by buyers desc, item) as rank
    from products
    where buyers > 0
    qualify rank <= {{ settings['per_customer'] }}

),

scored as (

    select
        coalesce(co.person, cat.person) as person,
        coalesce(co.item, cat.item) as item,
        coalesce(co.score, 0) + coalesce(cat.score, 0) as score,
        co.person is not null as co_purchased,
        cat.person is not null as category_liked,
        coalesce(cat.category_bought, false) as category_bought
    from by_co_purchase as co
    full outer join by_category as cat using (person, item)

),

unbought as (

    select scored.*
    from scored
    anti join purchases using (person, item)

),

thresholds as (

    -- the score a candidate must reach to be among a person's picks: a bounded heap of
    -- numbers, far cheaper than one of whole candidates
    select person, {{ cdp.nth_largest('score', settings['per_customer']) }} as threshold
    from unbought
    group by person

),

best as (

    -- each person's top candidates by score (ties: the smallest sku), kept in a bounded heap
    -- per person instead of sorting every candidate; structs compare field by field, and
    -- (person, item) is unique, so the fields after the first two never decide. Only the
    -- candidates that reach the threshold (a few per person, ties included) enter it.
    select unbought.person,
           {{ cdp.top_values(cdp.make_struct([
                  ('score', 'unbought.score'), ('negative_item', '-unbought.item'),
                  ('item', 'unbought.item'), ('co_purchased', 'unbought.co_purchased'),
                  ('category_liked', 'unbought.category_liked'),
                  ('category_bought', 'unbought.category_bought')]),
               settings['per_customer']) }}
               as picks
    from unbought
    inner join thresholds
        on unbought.person = thresholds.person and unbought.score >= thresholds.threshold
    group by unbought.person

),

picks as (

    {{ cdp.unnest_structs_ranked('best', 'person', 'picks') }}

),

because as (

    -- the most similar product bought (ties: the smallest sku), without sorting
    select picks.person, picks.item,
           min_by(similarity.bought_item,
                  {{ cdp.make_struct([('distance', '-similarity.similarity'),
                                      ('item', 'similarity.bought_item')]) }})
               as because_of
    from picks
    inner join purchases on purchases.person = picks.person
    inner join similarity
        on similarity.bought_item = purchases.item and similarity.item = picks.item
    where picks.co_purchased
    group by picks.person, picks.item

),

ranked as (

    select persons.customer_key, picks.item, picks.score, because.because_of,
           picks.category_liked, picks.category_bought, picks.rank
    from picks
    left join because using (person, item)
    inner join persons using (person)
    union all
    -- people without any signal get the best sellers
    -- (every person, as in customer_profiles; read from the identities so that this model
    -- does not wait for the profiles)
    select everyone.customer_key, best_sellers.item, best_sellers.score, null, null, null,
           best_sellers.rank
    from (
        select distinct customer_key from {{ ref('int_identity__customer_identities') }}
    ) as everyone
    anti join persons using (customer_key)
    cross join best_sellers

)

select
    ranked.customer_key,
    ranked.rank::bigint as rank,
    products.sku,
    products.category,
    {{ cdp.round_half_up('ranked.score', 4) }} as score,
    case
        when ranked.because_of is not null
            then 'bought by people who also bought ' || because.product_name
        when ranked.category_liked and ranked.category_bought
            then 'popular in ' || products.category || ', a category you buy'
        when ranked.category_liked
            then 'popular in ' || products.category || ', a category you browse'
        else 'a best seller'
    end as reason
from ranked
inner join products using (item)
left join products as because on because.item = ranked.because_of
