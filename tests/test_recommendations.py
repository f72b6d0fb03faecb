"""The recommendation picks (orchestration/recommendations.py) against a plain restatement of
their definition, one person and one candidate at a time."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.recommendations import OUTPUT_COLUMNS, Settings, recommend

SETTINGS = Settings(
    per_customer=3,
    similar_per_product=2,
    candidates_per_category=2,
    category_affinity_weight=0.5,
    top_interests=2,
)


def reference(products, bought, affinity, s: Settings) -> pd.DataFrame:
    """The definition, spelled out with dicts and loops (co-purchases counted here)."""
    sku = dict(zip(products.product_id, products.sku, strict=True))
    category = dict(zip(products.product_id, products.category, strict=True))
    baskets: dict[str, set[int]] = {}
    for key, product in zip(bought.customer_key, bought.product_id, strict=True):
        if product in sku:
            baskets.setdefault(key, set()).add(product)
    buyers = {p: sum(p in b for b in baskets.values()) for p in sku}
    neighbours = {}
    for p in sku:
        similar = []
        for q in sku:
            together = sum(p in b and q in b for b in baskets.values())
            if q != p and together:
                similar.append((together / math.sqrt(buyers[p] * buyers[q]), q))
        similar.sort(key=lambda x: (-x[0], sku[x[1]]))
        neighbours[p] = dict((q, v) for v, q in similar[: s.similar_per_product])
    top = max(buyers.values(), default=0)
    favorites = {}
    for c in set(category.values()):
        ranked = sorted((p for p in sku if category[p] == c and buyers[p]),
                        key=lambda p: (-buyers[p], sku[p]))  # fmt: skip
        favorites[c] = {p: buyers[p] / top for p in ranked[: s.candidates_per_category]}
    liked: dict[str, dict[str, tuple[float, bool]]] = {}
    for row in affinity.itertuples():
        if row.category_rank <= s.top_interests and row.category in favorites:
            liked.setdefault(row.customer_key, {})[row.category] = (row.share, row.purchases > 0)
    rows = []
    for key in set(baskets) | set(liked):
        mine = baskets.get(key, set())
        scores: dict[int, float] = {}
        for p in sorted(mine, key=sku.get):
            for q, v in neighbours[p].items():
                scores[q] = scores.get(q, 0.0) + v
        for c, (share, _) in liked.get(key, {}).items():
            for q, popularity in favorites[c].items():
                scores[q] = scores.get(q, 0.0) + s.category_affinity_weight * share * popularity
        picks = sorted((q for q in scores if q not in mine), key=lambda q: (-scores[q], sku[q]))
        for rank, q in enumerate(picks[: s.per_customer], start=1):
            because = [(neighbours[p][q], p) for p in mine if q in neighbours[p]]
            because.sort(key=lambda x: (-x[0], sku[x[1]]))
            in_category = liked.get(key, {}).get(category[q])
            category_liked = in_category is not None and q in favorites[category[q]]
            rows.append(
                (
                    key,
                    rank,
                    q,
                    scores[q],
                    because[0][1] if because else None,
                    category_liked,
                    category_liked and in_category[1],
                )  # fmt: skip
            )
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def co_purchases(bought: pd.DataFrame) -> pd.DataFrame:
    pairs = bought.merge(bought, on="customer_key")
    pairs = pairs[pairs.product_id_x != pairs.product_id_y]
    return (
        pairs.groupby(["product_id_x", "product_id_y"]).size().rename("together").reset_index()
        .rename(columns={"product_id_x": "product_id", "product_id_y": "other_product_id"})
    )  # fmt: skip


def picks(products, bought, affinity, s=SETTINGS) -> pd.DataFrame:
    return recommend(products, bought, co_purchases(bought), affinity, s)


def same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    order = ["customer_key", "rank"]
    actual = actual.sort_values(order).reset_index(drop=True)
    expected = expected.sort_values(order).reset_index(drop=True)
    assert (
        actual[order + ["product_id"]]
        .astype(str)
        .equals(expected[order + ["product_id"]].astype(str))
    )
    assert np.allclose(actual.score.to_numpy(float), expected.score.to_numpy(float), rtol=1e-12)
    assert list(actual.because_product_id.astype("Int64")) == list(
        expected.because_product_id.astype("Int64")
    )
    assert list(actual.category_liked) == list(expected.category_liked)
    assert list(actual.category_bought) == list(expected.category_bought)


PRODUCTS = pd.DataFrame(
    {
        "product_id": [10, 11, 12, 13, 14],
        "sku": ["SKU-E", "SKU-A", "SKU-B", "SKU-C", "SKU-D"],
        "category": ["shoes", "shoes", "shoes", "bags", "bags"],
    }
)


def test_picks_follow_co_purchases_and_never_repeat_a_purchase():
    bought = pd.DataFrame(
        {"customer_key": ["a", "a", "b", "b", "c"], "product_id": [11, 12, 11, 13, 11]}
    )
    affinity = pd.DataFrame(columns=["customer_key", "category", "share", "category_rank",
                                     "purchases"])  # fmt: skip
    result = picks(PRODUCTS, bought, affinity)
    # c bought 11 only; 12 and 13 were each bought with 11 once: a tie, the smaller sku first
    c = result[result.customer_key == "c"].sort_values("rank")
    assert list(c.product_id) == [12, 13]
    assert list(c.because_product_id) == [11, 11]
    assert not set(result.product_id[result.customer_key == "a"]) & {11, 12}
    same(result, reference(PRODUCTS, bought, affinity, SETTINGS))


def test_people_who_only_browse_get_their_categories_best_sellers():
    bought = pd.DataFrame({"customer_key": ["a", "b", "b"], "product_id": [13, 13, 14]})
    affinity = pd.DataFrame(
        {
            "customer_key": ["browser", "browser", "a"],
            "category": ["bags", "shoes", "bags"],
            "share": [0.75, 0.25, 1.0],
            "category_rank": [1, 2, 1],
            "purchases": [0, 0, 1],
        }
    )
    result = picks(PRODUCTS, bought, affinity)
    browser = result[result.customer_key == "browser"].sort_values("rank")
    # only bags have buyers: 13 (two buyers) before 14 (one)
    assert list(browser.product_id) == [13, 14]
    assert browser.category_liked.all() and not browser.category_bought.any()
    assert browser.because_product_id.isna().all()
    a = result[result.customer_key == "a"]
    assert list(a.product_id) == [14] and a.category_bought.all()
    same(result, reference(PRODUCTS, bought, affinity, SETTINGS))


@st.composite
def shops(draw):
    products = pd.DataFrame(
        {
            "product_id": range(100, 100 + (n := draw(st.integers(1, 8)))),
            "sku": draw(st.permutations([f"SKU-{i:02d}" for i in range(n)])),
            "category": draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n)),
        }
    )
    persons = [f"p{i}" for i in range(draw(st.integers(1, 8)))]
    # product 100 + n is not in the catalog
    purchase = st.tuples(st.sampled_from(persons), st.integers(100, 100 + n))
    pairs = draw(st.sets(purchase, max_size=30))
    bought = pd.DataFrame(sorted(pairs), columns=["customer_key", "product_id"])
    rows = []
    for person in persons:
        categories = draw(st.lists(st.sampled_from("xyzw"), unique=True, max_size=3))
        weights = [draw(st.integers(1, 4)) for _ in categories]
        for rank, (c, w) in enumerate(zip(categories, weights, strict=True), start=1):
            rows.append((person, c, w / sum(weights), rank, draw(st.integers(0, 2))))
    affinity = pd.DataFrame(
        rows, columns=["customer_key", "category", "share", "category_rank", "purchases"]
    )
    return products, bought, affinity


@settings(max_examples=150, deadline=None)
@given(shops(), st.randoms())
def test_picks_match_the_definition_in_any_input_order(shop, random):
    products, bought, affinity = shop
    expected = reference(products, bought, affinity, SETTINGS)
    first = picks(products, bought, affinity)
    same(first, expected)
    # read in another order: the very same scores, bit for bit
    shuffled = [frame.sample(frac=1, random_state=random.randint(0, 10**6))
                for frame in (products, bought, affinity)]  # fmt: skip
    again = picks(*shuffled)
    key = ["customer_key", "rank"]
    assert (
        first.sort_values(key)
        .reset_index(drop=True)
        .equals(again.sort_values(key).reset_index(drop=True))
    )


def test_a_shop_without_a_catalog_yet_has_no_picks():
    """Orders of products the (still empty) catalog does not list, and browsing of a category
    no product has: nothing to pick, and no error."""
    products = pd.DataFrame({"product_id": pd.Series([], dtype="int64"),
                             "sku": pd.Series([], dtype="str"),
                             "category": pd.Series([], dtype="str")})  # fmt: skip
    bought = pd.DataFrame({"customer_key": ["a", "a"], "product_id": [11, 12]})
    affinity = pd.DataFrame({"customer_key": ["a"], "category": ["shoes"], "share": [1.0],
                             "category_rank": [1], "purchases": [2]})  # fmt: skip
    result = picks(products, bought, affinity)
    assert list(result.columns) == OUTPUT_COLUMNS and result.empty


def test_picks_are_made_where_numba_has_nowhere_to_cache_its_code():
    """A read-only install without a writable home: numba finds no cache folder (simulated by
    allowing only its IPython locator), the pass is compiled in the process instead, and the
    picks are the same."""
    bought = pd.DataFrame({"customer_key": ["a", "b", "b"], "product_id": [13, 13, 14]})
    affinity = pd.DataFrame(columns=["customer_key", "category", "share", "category_rank",
                                     "purchases"])  # fmt: skip
    inputs = [f.to_dict("list") for f in (PRODUCTS, bought, co_purchases(bought), affinity)]
    script = (
        "import pandas as pd\n"
        "from orchestration import recommendations as r\n"
        "assert type(r._best_candidates._cache).__name__ == 'NullCache'\n"
        f"frames = [pd.DataFrame(d) for d in {inputs!r}]\n"
        f"picks = r.recommend(*frames, r.{SETTINGS!r})\n"
        "print(picks.to_json(orient='split'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = pd.read_json(io.StringIO(result.stdout), orient="split")
    assert not got.empty
    same(got, reference(PRODUCTS, bought, affinity, SETTINGS))
