{#- Up to `recommendations.per_customer` products per person that they have not bought:
    items bought by the same people as their own purchases (co-purchase, cosine-normalized),
    plus popular items of the categories they spend on. Prospects get the best sellers. -#}

{%- set settings = var('recommendations') %}

with

purchases as (

    select distinct orders.customer_key, products.sku, products.category
    from {{ ref('int_customers__orders') }} as orders
    inner join {{ ref('stg_shop__order_items') }} as items using (order_id)
    inner join {{ ref('stg_shop__products') }} as products using (product_id)
    where orders.is_valid

),

products as (

    select products.sku, products.product_name, products.category,
           count(distinct purchases.customer_key) as buyers
    from {{ ref('stg_shop__products') }} as products
    left join purchases using (sku)
    group by products.sku, products.product_name, products.category

),

co_purchase as (

    select a.sku as bought_sku, b.sku, count(*) as together
    from purchases as a
    inner join purchases as b on a.customer_key = b.customer_key and a.sku <> b.sku
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

    select purchases.customer_key, similarity.sku,
           sum(similarity.similarity) as score,
           first(similarity.bought_sku order by similarity.similarity desc,
                 similarity.bought_sku) as because_of
    from purchases
    inner join similarity on similarity.bought_sku = purchases.sku
    group by purchases.customer_key, similarity.sku

),

category_share as (

    select customer_key, category, count(*) / sum(count(*)) over (partition by customer_key)
        as share
    from purchases
    group by customer_key, category

),

category_favorites as (

    select sku, category, buyers / max(buyers) over () as popularity
    from products
    where buyers > 0
    qualify row_number() over (partition by category order by buyers desc, sku)
        <= {{ settings['candidates_per_category'] }}

),

by_category as (

    select category_share.customer_key, category_favorites.sku,
           {{ settings['category_affinity_weight'] }} * category_share.share
               * category_favorites.popularity as score,
           category_share.category
    from category_share
    inner join category_favorites using (category)

),

best_sellers as (

    select sku, buyers / max(buyers) over () as score
    from products
    where buyers > 0
    qualify row_number() over (order by buyers desc, sku) <= {{ settings['per_customer'] }}

),

prospects as (

    select profiles.customer_key, best_sellers.sku, best_sellers.score
    from {{ ref('customer_profiles') }} as profiles
    cross join best_sellers
    where profiles.orders = 0

),

scored as (

    select
        coalesce(co.customer_key, cat.customer_key) as customer_key,
        coalesce(co.sku, cat.sku) as sku,
        coalesce(co.score, 0) + coalesce(cat.score, 0) as score,
        co.because_of,
        cat.category as liked_category
    from by_co_purchase as co
    full outer join by_category as cat using (customer_key, sku)
    union all
    select customer_key, sku, score, null, null from prospects

),

unbought as (

    select scored.*
    from scored
    anti join purchases using (customer_key, sku)

),

ranked as (

    select *, row_number() over (partition by customer_key order by score desc, sku) as rank
    from unbought
    qualify rank <= {{ settings['per_customer'] }}

)

select
    ranked.customer_key,
    ranked.rank,
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
