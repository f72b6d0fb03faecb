{#- How many persons bought both of two products (every pair in both directions), from
    int_customers__products_bought. Kept from build to build (macros/persons.sql): a build that
    recomputes only the touched persons adds the pairs of their products now and takes away
    the pairs of their products as last counted (`__counted`, the rows of
    int_customers__products_bought these counts were made from), so a night's cost follows the
    night's buyers, not every purchase ever made. Counted whole on the first build, on a full
    refresh, when every person is listed, and on Spark. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='delete+insert',
        unique_key=['product_id', 'other_product_id'],
        tags=['per_person'],
        pre_hook="{{ cdp.forget_co_purchases() if is_incremental() }}",
        post_hook=["{{ cdp.keep_counted_purchases() }}", "{{ cdp.touched_persons_applied() }}"]
    )
}}
-- depends_on: {{ ref('int_customers__touched_persons') }}

{%- if cdp.co_purchases_counted_since() %}

with

touched as (

    select customer_key from {{ ref('int_customers__touched_persons') }}

),

now_bought as materialized (

    select customer_key, product_id
    from {{ ref('int_customers__products_bought') }} semi join touched using (customer_key)

),

counted as materialized (

    select customer_key, product_id
    from {{ cdp.state_relation('counted') }} semi join touched using (customer_key)

),

changed_persons as (

    -- most touched persons were touched by what they did on the web, not by what they bought
    select distinct customer_key from (
        (select * from now_bought except all select * from counted)
        union all
        (select * from counted except all select * from now_bought)
    ) as differences

),

changes as (

    {%- for side, sign in [('now_bought', ''), ('counted', '-')] %}
    select a.product_id, b.product_id as other_product_id, {{ sign }}count(*) as change
    from {{ side }} as a
    semi join changed_persons using (customer_key)
    inner join {{ side }} as b
        on a.customer_key = b.customer_key and a.product_id <> b.product_id
    group by a.product_id, b.product_id
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

pairs_changed as (

    select product_id, other_product_id, sum(change)::bigint as change
    from changes
    group by product_id, other_product_id
    having sum(change) <> 0

)

-- a pair no one bought any more keeps a count of 0 until the post-hook deletes it
select
    pairs_changed.product_id,
    pairs_changed.other_product_id,
    coalesce(kept.together, 0) + pairs_changed.change as together
from pairs_changed
left join {{ this }} as kept using (product_id, other_product_id)

{%- else %}

select a.product_id, b.product_id as other_product_id, count(*) as together
from {{ ref('int_customers__products_bought') }} as a
inner join {{ ref('int_customers__products_bought') }} as b
    on a.customer_key = b.customer_key and a.product_id <> b.product_id
group by a.product_id, b.product_id

{%- endif %}
