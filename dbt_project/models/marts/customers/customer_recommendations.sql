{#- Up to `recommendations.per_customer` products per person that they have not bought:
    items bought by the same people as their own purchases (co-purchase, cosine-normalized),
    plus the most bought items of their strongest categories by behaviour (the `interests.top`
    categories of int_customers__category_affinity: views, cart adds and purchases, decayed),
    weighted by each category's share of their interest. So people who browse but have not
    bought get picks from the categories they browse; only people without any signal (no
    valid order, no product seen in GA4) get the best sellers. The picks are scored in
    int_customers__recommendation_picks; here they get their products' names and a reason. -#}

{%- set settings = var('recommendations') %}

with

products as (

    select product_id, sku, product_name, category from {{ ref('stg_shop__products') }}

),

best_sellers as (

    select
        products.product_id,
        bought.buyers / max(bought.buyers) over () as score,
        row_number() over (order by bought.buyers desc, products.sku) as rank
    from products
    inner join (
        -- a person and product once each there: a row is a buyer
        select product_id, count(*) as buyers
        from {{ ref('int_customers__products_bought') }}
        group by product_id
    ) as bought using (product_id)
    qualify rank <= {{ settings['per_customer'] }}

),

with_signal as (

    -- everyone with a signal: a valid order, or a product seen, added or bought in GA4
    select customer_key from {{ ref('int_customers__orders') }} where is_valid
    union
    select customer_key from {{ ref('int_customers__category_affinity') }}
    where category_rank = 1

),

ranked as (

    select customer_key, product_id, score, because_product_id, category_liked,
           category_bought, rank
    from {{ ref('int_customers__recommendation_picks') }}
    union all
    -- people without any signal get the best sellers
    -- (every person, one row each in int_customers__profiles as in customer_profiles, which
    -- this model does not wait for)
    select everyone.customer_key, best_sellers.product_id, best_sellers.score, null, null,
           null, best_sellers.rank
    from {{ ref('int_customers__profiles') }} as everyone
    anti join with_signal using (customer_key)
    cross join best_sellers

)

select
    ranked.customer_key,
    ranked.rank::bigint as rank,
    products.sku,
    products.category,
    {{ cdp.round_half_up('ranked.score', 4) }} as score,
    case
        when ranked.because_product_id is not null
            then 'bought by people who also bought ' || because.product_name
        when ranked.category_liked and ranked.category_bought
            then 'popular in ' || products.category || ', a category you buy'
        when ranked.category_liked
            then 'popular in ' || products.category || ', a category you browse'
        else 'a best seller'
    end as reason
from ranked
inner join products using (product_id)
left join products as because on because.product_id = ranked.because_product_id
