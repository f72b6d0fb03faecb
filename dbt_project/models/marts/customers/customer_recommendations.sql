{#- Up to `recommendations.per_customer` products per person that they have not bought:
    items bought by the same people as their own purchases (co-purchase, cosine-normalized),
    plus popular items of the categories they spend on. Prospects get the best sellers. -#}

{%- set settings = var('recommendations') %}

with

-- Buyers get a small integer id for the heavy joins below (tens of millions of candidate
-- rows at a million persons); customer_key comes back at the end.
buyers as (

    select customer_key, row_number() over (order by customer_key) as person
    from {{ ref('int_customers__orders') }}
    where is_valid
    group by customer_key

),

purchases as (

    select distinct buyers.person, products.sku, products.category
    from {{ ref('int_customers__orders') }} as orders
    inner join buyers using (customer_key)
    inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
    inner join {{ ref('stg_shop__products') }} as products using (product_id)
    where orders.is_valid

),

products as (

    select products.sku, products.product_name, products.category,
           count(distinct purchases.person) as buyers
    from {{ ref('stg_shop__products') }} as products
    left join purchases using (sku)
    group by products.sku, products.product_name, products.category

),

co_purchase as (

    select a.sku as bought_sku, b.sku, count(*) as together
    from purchases as a
    inner join purchases as b on a.person = b.person and a.sku <> b.sku
    group by a.sku, b.sku

),

similarity as (

    select co_purchase.bought_sku, co_purchase.sku,
           co_purchase.together / sqrt(bought.buyers * candidate.buyers) as similarity
    from co_purchase
    inner join products as bought on bought.sku = co_purchase.bought_sku
    inner join products as candidate on candidate.sku = co_purchase.sku
    -- only each product's closest neighbours: every purchase fans out to this many candidates
    qualify row_number() over (
        partition by co_purchase.bought_sku order by similarity desc, co_purchase.sku
    ) <= {{ settings['similar_per_product'] }}

),

by_co_purchase as (

    select purchases.person, similarity.sku,
           sum(similarity.similarity) as score,
           -- the most similar product bought (ties: the smallest sku), without sorting
           arg_min(similarity.bought_sku,
                   {'distance': -similarity.similarity, 'sku': similarity.bought_sku})
               as because_of
    from purchases
    inner join similarity on similarity.bought_sku = purchases.sku
    group by purchases.person, similarity.sku

),

category_share as (

    select person, category, count(*) / sum(count(*)) over (partition by person) as share
    from purchases
    group by person, category

),

category_favorites as (

    select sku, category, buyers / max(buyers) over () as popularity
    from products
    where buyers > 0
    qualify row_number() over (partition by category order by buyers desc, sku)
        <= {{ settings['candidates_per_category'] }}

),

by_category as (

    select category_share.person, category_favorites.sku,
           {{ settings['category_affinity_weight'] }} * category_share.share
               * category_favorites.popularity as score,
           category_share.category
    from category_share
    inner join category_favorites using (category)

),

best_sellers as (

    select sku, buyers / max(buyers) over () as score,
           row_number() over (order by buyers desc, sku) as rank
    from products
    where buyers > 0
    qualify rank <= {{ settings['per_customer'] }}

),

scored as (

    select
        coalesce(co.person, cat.person) as person,
        coalesce(co.sku, cat.sku) as sku,
        coalesce(co.score, 0) + coalesce(cat.score, 0) as score,
        co.because_of,
        cat.category as liked_category
    from by_co_purchase as co
    full outer join by_category as cat using (person, sku)

),

unbought as (

    select scored.*
    from scored
    anti join purchases using (person, sku)

),

best as (

    -- each buyer's top candidates by score (ties: the smallest sku), kept in a bounded heap
    -- per buyer instead of sorting every candidate
    select person,
           arg_min({'sku': sku, 'score': score, 'because_of': because_of,
                    'liked_category': liked_category},
                   {'negative_score': -score, 'sku': sku},
                   {{ settings['per_customer'] }}) as picks
    from unbought
    group by person

),

ranked as (

    select buyers.customer_key, picks.sku, picks.score, picks.because_of, picks.liked_category,
           picks.rank
    from (
        select person, unnest(picks, recursive := true), generate_subscripts(picks, 1) as rank
        from best
    ) as picks
    inner join buyers using (person)
    union all
    -- prospects (no valid order yet) get the best sellers
    select profiles.customer_key, best_sellers.sku, best_sellers.score, null, null,
           best_sellers.rank
    from {{ ref('customer_profiles') }} as profiles
    cross join best_sellers
    where profiles.orders = 0

)

select
    ranked.customer_key,
    ranked.rank::bigint as rank,
    ranked.sku,
    products.category,
    round(ranked.score, 4) as score,
    case
        when ranked.because_of is not null
            then 'bought by people who also bought ' || because.product_name
        when ranked.liked_category is not null
            then 'popular in ' || ranked.liked_category || ', a category you buy'
        else 'a best seller'
    end as reason
from ranked
inner join products using (sku)
left join products as because on because.sku = ranked.because_of
