"""customer_predictions at scale and on held-out months.

    python bench/predictions.py [--persons 1000000]
    python bench/predictions.py --holdout data/warehouse.duckdb [--cutoff DAY --end DAY]

The first form builds the bench's shop orders (bench/generate.py: two orders per person over two
years) in memory, derives the purchase history exactly as the dbt model does, and times fitting
BG/NBD and Gamma-Gamma and predicting for every buyer, with the process's peak memory. The second
fits on a warehouse's valid orders before the cutoff and compares the predicted purchase days per
buyer until the end with what happened, beside the naive forecast.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import build  # noqa: E402

from orchestration.predictions import holdout, predict  # noqa: E402

AS_OF = "2026-10-22"


def history(con: duckdb.DuckDBPyConnection):
    """The purchase history of int_customers__purchase_history, on the bench's orders."""
    return con.execute(f"""
        with purchase_days as (
            -- the person behind an order by its email (what stitching finds), placeholders
            -- left out
            select lower(trim(email)) as customer_key, ordered_at::date as order_day,
                   sum(total_amount) as amount
            from orders
            where status in ('paid', 'shipped', 'delivered') and email <> 'noemail@store.com'
                and ordered_at::date <= date '{AS_OF}'
            group by all
        ), numbered as (
            select *, min(order_day) over (partition by customer_key) as first_day
            from purchase_days
        )
        select customer_key, count(*) - 1 as frequency,
               date_diff('day', min(order_day), max(order_day)) as recency_days,
               date_diff('day', min(order_day), date '{AS_OF}') as tenure_days,
               avg(amount) filter (where order_day > first_day)::double as monetary_value
        from numbered group by customer_key
    """).fetch_df()


def scale(persons: int) -> None:
    con = duckdb.connect()
    started = time.perf_counter()
    build(con, persons)
    buyers = history(con)
    print(
        f"{persons:,} persons: {len(buyers):,} buyers, "
        f"{int((buyers.frequency > 0).sum()):,} repeat buyers "
        f"(history built in {time.perf_counter() - started:.1f} s)"
    )
    started = time.perf_counter()
    predictions, fit = predict(buyers, min_repeat_buyers=30, monthly_discount_rate=0.01)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"fit and predict: {seconds:.1f} s, peak RSS {peak:.2f} GiB, converged {fit.converged}")
    print(f"BG/NBD {fit.purchase_parameters}")
    print(f"Gamma-Gamma {fit.spend_parameters}")
    print(predictions.describe().T.to_string())


def held_out(warehouse: Path, cutoff: str, end: str) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders = con.execute(
            "select customer_key, order_day from intermediate.int_customers__orders where is_valid"
        ).fetch_df()
    report = holdout(orders, cutoff, end, min_repeat_buyers=30)
    print(
        f"fit on purchases before {cutoff}, predicted {cutoff} to {end} "
        f"({report['holdout_days']} days), {report['buyers']:,} buyers:"
    )
    print("| forecast | purchase days, total | mean absolute error per buyer | correlation |")
    print("|---|---|---|---|")
    print(f"| what happened | {report['actual_total']:.0f} | | |")
    for name, key in (("BG/NBD", "model"), ("naive: each keeps their repeat rate", "naive")):
        print(
            f"| {name} | {report[f'{key}_total']:.0f} | {report[f'{key}_mae']:.3f} | "
            f"{report[f'{key}_correlation']:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--holdout", type=Path, help="a build warehouse to validate on")
    parser.add_argument("--cutoff", default="2026-04-01")
    parser.add_argument("--end", default="2026-10-01")
    args = parser.parse_args()
    if args.holdout:
        held_out(args.holdout, args.cutoff, args.end)
    else:
        scale(args.persons)


if __name__ == "__main__":
    main()
