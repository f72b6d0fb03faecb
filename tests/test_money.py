"""One reporting currency: a missing exchange rate blocks the run, naming what is missing,
and the previous publication stays as it was."""

import hashlib
import re
import shutil

import pandas as pd

from orchestration.defs.quality.fx_rates import describe

from .conftest import DEMO_AS_OF, SEEDS, run_cdp


def without_rate(orders: pd.DataFrame, rates: pd.DataFrame) -> dict[str, list[str]]:
    """Valid non-USD orders with no rate of their currency in the 7 days up to their UTC day:
    the order days, per currency."""
    valid = orders[
        orders.status.isin(["paid", "shipped", "delivered"]) & (orders.currency != "USD")
    ]
    missing: dict[str, list[str]] = {}
    for order in valid.itertuples():
        day = pd.Timestamp(order.ordered_at).tz_convert("UTC").strftime("%Y-%m-%d")
        week_before = (pd.Timestamp(day) - pd.Timedelta(days=7)).strftime("%Y-%m-%d")
        usable = rates[
            (rates.currency == order.currency) & rates.rate_date.between(week_before, day)
        ]
        if usable.empty:
            missing.setdefault(order.currency, []).append(day)
    return missing


def test_a_missing_rate_fails_the_run_naming_currency_and_days(demo_warehouse, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("warehouse.duckdb", "marts.duckdb", "privacy.salt"):
        shutil.copy2(demo_warehouse.parent / name, data_dir / name)
    published = hashlib.sha256((data_dir / "marts.duckdb").read_bytes()).hexdigest()

    sheets = tmp_path / "sheets"
    shutil.copytree(SEEDS / "sheets", sheets)
    rates = pd.read_csv(sheets / "fx_rates.csv", dtype=str)
    # every CAD rate gone, and GBP's of a fortnight: only orders more than 7 days after the
    # last GBP rate before the gap miss one
    gap = (rates.currency == "GBP") & rates.rate_date.between("2026-03-01", "2026-03-14")
    kept = rates[(rates.currency != "CAD") & ~gap]
    kept.to_csv(sheets / "fx_rates.csv", index=False)
    missing = without_rate(pd.read_csv(SEEDS / "shop" / "orders.csv", dtype=str), kept)
    assert set(missing) == {"CAD", "GBP"}

    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_SHEETS_URI=str(sheets))

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "fx_rates_cover_orders" in output
    for currency, days in missing.items():
        # the orders of the demo's erased persons are gone from the warehouse
        count, first = re.search(rf"{currency}: (\d+) orders on ([\d-]+)", output).groups()
        assert 0 < int(count) <= len(days) and first in days
    assert hashlib.sha256((data_dir / "marts.duckdb").read_bytes()).hexdigest() == published


def test_the_description_names_each_currency_and_at_most_five_days():
    text = describe(
        [
            {"currency": "CAD", "orders": 9, "days": [f"2026-01-0{d}" for d in range(1, 8)]},
            {"currency": "JPY", "orders": 1, "days": ["2026-02-03"]},
        ],
        "EUR",
    )
    assert text.startswith("no rate into EUR at most 7 days old for CAD: 9 orders on 2026-01-01")
    assert "2026-01-05 and 2 more days; JPY: 1 orders on 2026-02-03" in text
    assert "fx_rates tab" in text
