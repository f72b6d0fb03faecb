"""Each person's recommendation picks (orchestration/recommendations.py): the products they have
not bought with the best co-purchase and category scores, and the product bought that explains
a co-purchase pick. A Python model because the scoring is a sparse matrix product: as SQL it
is a hash aggregate of tens of millions of (person, product) groups at a million persons.
The `customer_recommendations` mart names the picks and adds the best sellers."""

from orchestration.recommendations import Settings, recommend
from orchestration.spark import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    top_interests = int(dbt.config.get("top_interests"))
    # only each person's top interests and the columns scored, filtered where they are stored:
    # read whole, every row and column crossed into pandas to be dropped there
    liked = (
        dbt.ref("int_customers__category_affinity")
        .filter(f"category_rank <= {top_interests}")
        .select("customer_key", "category", "share", "category_rank", "purchases")
    )
    picks = recommend(
        products=to_pandas(dbt.ref("stg_shop__products")),
        bought=to_pandas(dbt.ref("int_customers__products_bought")),
        co_purchases=to_pandas(dbt.ref("int_customers__co_purchases")),
        affinity=to_pandas(liked),
        settings=Settings(
            per_customer=int(dbt.config.get("per_customer")),
            similar_per_product=int(dbt.config.get("similar_per_product")),
            candidates_per_category=int(dbt.config.get("candidates_per_category")),
            category_affinity_weight=float(dbt.config.get("category_affinity_weight")),
            top_interests=top_interests,
        ),
    )
    return from_pandas(session, picks)
