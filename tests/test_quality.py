"""Great Expectations suites see the rows loaded since their table last passed, no fewer."""

import datetime as dt

from orchestration.defs.quality.validate import mark_validated, unvalidated_rows, validate_table
from orchestration.warehouse import connect

TABLE = "raw_shop.products"


def _load(con, rows, at):
    con.executemany(f"insert into {TABLE} values (?, ?, ?, ?, ?)", [[*row, at] for row in rows])


def _validate(con, data_dir, run_id):
    where, loaded_at = unvalidated_rows(con, TABLE)
    passed, metadata = validate_table(con, TABLE, data_dir, where, run_name=run_id)
    if passed:
        mark_validated(con, TABLE, loaded_at, run_id)
    return passed, metadata["rows_validated"]


def test_suite_sees_new_rows_and_keeps_seeing_rows_that_failed(tmp_path):
    day = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute(
            "create schema raw_shop; create table raw_shop.products (product_id bigint, "
            "sku varchar, category varchar, price decimal(12, 2), _loaded_at timestamptz)"
        )
        _load(con, [(1, "SKU-1", "shoes", 10), (2, "SKU-2", "shoes", 20)], day)
        assert _validate(con, tmp_path, "run1") == (True, 2)

        _load(con, [(3, "SKU-3", "books", 5)], day + dt.timedelta(days=1))
        assert _validate(con, tmp_path, "run2") == (True, 1)  # history is not read again

        _load(con, [(4, "SKU-4", "books", -1)], day + dt.timedelta(days=2))  # negative price
        assert _validate(con, tmp_path, "run3") == (False, 1)

        # the next run still sees the failed row next to its own
        _load(con, [(5, "SKU-5", "books", 7)], day + dt.timedelta(days=3))
        assert _validate(con, tmp_path, "run4") == (False, 2)

        con.execute(f"delete from {TABLE} where price < 0")  # fixed at the source, reloaded
        assert _validate(con, tmp_path, "run5") == (True, 1)
        assert _validate(con, tmp_path, "run6") == (True, 0)


def test_data_docs_add_each_run_without_rendering_history_again(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute(
            "create schema raw_shop; create table raw_shop.products (product_id bigint, "
            "sku varchar, category varchar, price decimal(12, 2), _loaded_at timestamptz)"
        )
        _load(con, [(1, "SKU-1", "shoes", 10)], dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
        docs = tmp_path / "quality" / "data_docs"
        _validate(con, tmp_path, "run-a")
        (first_page,) = (docs / "validations").rglob("*.html")
        rendered = first_page.stat().st_mtime_ns
        _validate(con, tmp_path, "run-b")
        pages = sorted(page.parts[-3] for page in (docs / "validations").rglob("*.html"))
        assert pages == ["run-a", "run-b"]  # filed under the Dagster run that validated
        assert first_page.stat().st_mtime_ns == rendered  # the older page was left alone
        index = (docs / "index.html").read_text()
        assert "run-a" in index and "run-b" in index


def test_accepted_values_are_defined_once_and_the_committed_suites_use_them():
    import json

    from orchestration.accepted import accepted_values
    from orchestration.row_rules import load_rules
    from orchestration.settings import REPO_ROOT

    lists = {key: sorted(values) for key, values in accepted_values().items()}
    used = set()
    for path in (REPO_ROOT / "expectations" / "gx" / "expectations").rglob("*.json"):
        for expectation in json.loads(path.read_text())["expectations"]:
            value_set = expectation["kwargs"].get("value_set")
            if value_set is None:
                continue
            match = [key for key, values in lists.items() if values == sorted(value_set)]
            assert match, f"{path.name}: {value_set} is not a list of accepted_values"
            used.update(match)
    assert used == set(lists), "run: python expectations/build_suites.py"
    status = load_rules()["raw_shop.orders"]["valid_status"]
    assert all(f"'{value}'" in status for value in lists["order_status"])
