"""Each person's recommendation picks, scored in one compiled pass over sparse matrices.

A person's candidates are the products bought by the same people as their own purchases
(co-purchase similarity, cosine-normalized, each product's `similar_per_product` closest
neighbours) plus the most bought products of their strongest categories by behaviour,
weighted by each category's share of their interest. Their picks are the `per_customer`
candidates they have not bought with the highest score (ties: the smallest sku).

At a million persons that is 50M (person, product) candidates. As SQL, summing them per
person and product is one hash aggregate of 34M groups, then a sort or heap per person; here
the inputs are sparse matrices (purchases, category shares, product neighbours, category
favorites) and one compiled pass goes person by person, summing their candidates' scores in
an array over the products and keeping the best, so the candidates are never stored
together. Each sum adds its terms in the same order whatever order the rows were read in (a
matrix's entries are sorted), so the same inputs give the same scores, bit for bit, and the
same picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

OUTPUT_COLUMNS = [
    "customer_key",
    "rank",
    "product_id",
    "score",
    "because_product_id",
    "category_liked",
    "category_bought",
]


@dataclass(frozen=True)
class Settings:
    per_customer: int
    similar_per_product: int
    candidates_per_category: int
    category_affinity_weight: float
    top_interests: int


def _codes(values: pd.Series, dictionary: pa.Array) -> np.ndarray:
    """The position of each value in `dictionary` (-1 if absent), through Arrow's hash join."""
    return (
        pc.index_in(pa.array(values, dictionary.type), value_set=dictionary)
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
    )


def _csr(rows, cols, values, shape) -> sp.csr_matrix:
    """A canonical CSR matrix (entries sorted in each row, duplicates summed)."""
    matrix = sp.csr_matrix((values, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[k], cols[k]] for every k, 0 where nothing is stored."""
    if not len(rows):
        return np.zeros(0)
    return np.asarray(matrix[rows, cols]).ravel()


def _compiled(function):
    """Compiled by numba, and the machine code cached beside this module (else in the user's
    cache folder) for the next process; compiled in each process where neither is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba found nowhere to cache it
        return numba.njit(nogil=True)(function)


@_compiled
def _keep(best, kept, count, entry, values, keys):
    """Put `entry` among the `kept` best entries in `best` (at most `count`, best first),
    after every entry at least as good: a larger value, or an equal one with a smaller key.
    Returns how many are kept."""
    value = values[entry]
    place = kept
    while place > 0:
        other = best[place - 1]
        if values[other] > value or (values[other] == value and keys[other] < keys[entry]):
            break
        place -= 1
    if place >= count:
        return kept
    for moved in range(min(kept, count - 1), place, -1):
        best[moved] = best[moved - 1]
    best[place] = entry
    return min(kept + 1, count)


@_compiled
def _top_per_row(data, indptr, keys, count):
    """(rows, positions, ranks) of the `count` largest finite values of each row of a CSR
    layout, row by row and best first, ties to the smallest key (unique in a row): one pass
    over each row."""
    rows = len(indptr) - 1
    out_rows = np.empty(rows * count, np.int64)
    out_positions = np.empty(rows * count, np.int64)
    out_ranks = np.empty(rows * count, np.int64)
    best = np.empty(count, np.int64)  # positions, best first
    found = 0
    for row in range(rows):
        kept = 0
        for position in range(indptr[row], indptr[row + 1]):
            if data[position] > -np.inf:  # -inf and NaN are never picked
                kept = _keep(best, kept, count, position, data, keys)
        for rank in range(kept):
            out_rows[found] = row
            out_positions[found] = best[rank]
            out_ranks[found] = rank + 1
            found += 1
    return out_rows[:found], out_positions[:found], out_ranks[:found]


@_compiled
def _note(candidate, seen, touched, count):
    """Add `candidate` once to the `count` candidates `touched` so far; the new count."""
    if seen[candidate]:
        return count
    seen[candidate] = True
    touched[count] = candidate
    return count + 1


@_compiled
def _best_candidates(
    bought_at,
    bought,
    liked_at,
    liked,
    liked_weight,
    near_at,
    near,
    similarity,
    favorite_at,
    favorite,
    popularity,
    count,
):
    """Each person's `count` best candidates, best first (ties: the smallest column), with
    the product bought that explains each: the first of the person's purchases (in column
    order) most similar to it, -1 if none is.

    A candidate's score is the sum of the similarities of the person's purchases to it, then
    of their liked categories' weights times its popularity, added in that order (the columns'
    order, whatever order the rows were read in: the same sums, bit for bit); what they bought
    is never a candidate, nor a candidate whose terms sum to zero. One row at a time in a
    dense array over the products: the 50M candidates of a million persons are never stored
    together."""
    persons = len(bought_at) - 1
    products = len(near_at) - 1
    score = np.zeros(products)
    closest = np.zeros(products)  # the highest similarity of a purchase to the candidate
    explained_by = np.full(products, -1, np.int64)
    seen = np.zeros(products, np.bool_)
    excluded = np.zeros(products, np.bool_)
    touched = np.empty(products, np.int64)
    columns = np.arange(products)
    best = np.empty(count, np.int64)
    out_rows = np.empty(persons * count, np.int64)
    out_items = np.empty(persons * count, np.int64)
    out_scores = np.empty(persons * count)
    out_ranks = np.empty(persons * count, np.int64)
    out_because = np.empty(persons * count, np.int64)
    found = 0
    for person in range(persons):
        n_touched = 0
        for k in range(bought_at[person], bought_at[person + 1]):
            product = bought[k]
            excluded[product] = True
            for j in range(near_at[product], near_at[product + 1]):
                other = near[j]
                n_touched = _note(other, seen, touched, n_touched)
                score[other] += similarity[j]
                if similarity[j] > closest[other]:
                    closest[other] = similarity[j]
                    explained_by[other] = product
        for k in range(liked_at[person], liked_at[person + 1]):
            category = liked[k]
            for j in range(favorite_at[category], favorite_at[category + 1]):
                other = favorite[j]
                n_touched = _note(other, seen, touched, n_touched)
                score[other] += liked_weight[k] * popularity[j]
        kept = 0  # the best `count`, ties to the smallest column
        for t in range(n_touched):
            candidate = touched[t]
            if not excluded[candidate] and score[candidate] != 0:
                kept = _keep(best, kept, count, candidate, score, columns)
        for rank in range(kept):
            out_rows[found] = person
            out_items[found] = best[rank]
            out_scores[found] = score[best[rank]]
            out_ranks[found] = rank + 1
            out_because[found] = explained_by[best[rank]]
            found += 1
        for t in range(n_touched):  # clean for the next person
            candidate = touched[t]
            score[candidate] = 0.0
            closest[candidate] = 0.0
            explained_by[candidate] = -1
            seen[candidate] = False
        for k in range(bought_at[person], bought_at[person + 1]):
            excluded[bought[k]] = False
    return (
        out_rows[:found],
        out_items[:found],
        out_scores[:found],
        out_ranks[:found],
        out_because[:found],
    )


def recommend(
    products: pd.DataFrame,
    bought: pd.DataFrame,
    co_purchases: pd.DataFrame,
    affinity: pd.DataFrame,
    settings: Settings,
) -> pd.DataFrame:
    """Picks per person: `products` (product_id, sku, category), `bought` (customer_key,
    product_id, once each), `co_purchases` (product_id, other_product_id, together: persons who
    bought both), `affinity` (customer_key, category, share, category_rank, purchases)."""
    # products in sku order: a column's number decides ties
    products = products.sort_values("sku", kind="stable").reset_index(drop=True)
    n = len(products)
    product_ids = pa.array(products["product_id"])
    categories = pa.array(sorted(products["category"].dropna().unique()), pa.string())
    category_of = _codes(products["category"], categories)

    # products outside the catalog, and categories no product of it has, join nothing
    bought_item = _codes(bought["product_id"], product_ids)
    in_catalog = bought_item >= 0
    liked = affinity[affinity["category_rank"].to_numpy() <= settings.top_interests]
    liked_category = _codes(liked["category"], categories)
    known = liked_category >= 0
    liked_category = liked_category[known]
    # persons numbered in one pass over both inputs' keys, in order of first appearance
    # (pandas' hash table: Arrow's dictionary encoding is several times slower on 6M keys)
    keys = pd.concat(
        [bought["customer_key"][in_catalog], liked["customer_key"][known]], ignore_index=True
    )
    person_of, persons = pd.factorize(keys.astype("str"))
    persons = pa.array(persons, pa.string())
    buyer_of, liker_of = person_of[: in_catalog.sum()], person_of[in_catalog.sum() :]
    m = len(persons)

    purchases = _csr(buyer_of, bought_item[in_catalog], np.ones(len(buyer_of)), (m, n))
    buyers = np.diff(purchases.tocsc().indptr).astype(np.int64)

    # each product's closest neighbours by cosine similarity of their buyers
    a = _codes(co_purchases["product_id"], product_ids)
    b = _codes(co_purchases["other_product_id"], product_ids)
    together = co_purchases["together"].to_numpy(dtype=np.int64)
    pairs = (a >= 0) & (b >= 0)
    a, b, together = a[pairs], b[pairs], together[pairs]
    cosine = _csr(a, b, together / np.sqrt(buyers[a] * buyers[b]), (n, n))
    of, at, _ = _top_per_row(
        cosine.data, cosine.indptr, cosine.indices, settings.similar_per_product
    )
    neighbours = _csr(of, cosine.indices[at], cosine.data[at], (n, n))

    # the most bought products of each category, by their share of the best seller's buyers
    has_buyers = buyers > 0
    popularity = buyers / buyers[has_buyers].max() if has_buyers.any() else np.zeros(n)
    by_category = np.lexsort((np.arange(n), -buyers, category_of))
    place = np.arange(n) - np.searchsorted(category_of[by_category], category_of[by_category])
    favorite = by_category[
        (place < settings.candidates_per_category)
        & has_buyers[by_category]
        & (category_of[by_category] >= 0)
    ]
    favorites = _csr(category_of[favorite], favorite, popularity[favorite], (len(categories), n))
    shares = _csr(
        liker_of,
        liked_category,
        settings.category_affinity_weight * liked["share"].to_numpy(dtype=float)[known],
        (m, len(categories)),
    )

    # every candidate's score and its explanation, person by person in one compiled pass
    rows, items, scores, ranks, because = _best_candidates(
        purchases.indptr,
        purchases.indices,
        shares.indptr,
        shares.indices,
        shares.data,
        neighbours.indptr,
        neighbours.indices,
        neighbours.data,
        favorites.indptr,
        favorites.indices,
        favorites.data,
        settings.per_customer,
    )

    category = category_of[items]
    category_liked = (_lookup(shares, rows, category) > 0) & np.isin(items, favorite)
    bought_in = _csr(
        liker_of,
        liked_category,
        (liked["purchases"].fillna(0).to_numpy()[known] > 0).astype(float),
        (m, len(categories)),
    )
    product_id = products["product_id"].to_numpy()
    return pd.DataFrame(
        {
            "customer_key": pd.array(persons.take(pa.array(rows)), dtype="str"),
            "rank": ranks.astype(np.int64),
            "product_id": product_id[items],
            "score": scores,
            "because_product_id": pd.Series(
                product_id[np.maximum(because, 0)], dtype="Int64"
            ).where(because >= 0),
            "category_liked": category_liked,
            "category_bought": category_liked & (_lookup(bought_in, rows, category) > 0),
        }
    )[OUTPUT_COLUMNS]
