"""Write-audit-publish: a bad night never reaches marts.duckdb; a good one always fully."""

import csv
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.shop.demo import load_shop_seeds

from .conftest import DEMO_AS_OF, REPO, SEEDS, run_cdp

MARTS = list(PUBLISHED_MARTS)  # every mart BI tools read


def content_hash(marts: Path) -> str:
    """Hash of every mart's rows (order-independent), so equal data gives an equal hash."""
    digest = hashlib.sha256()
    with duckdb.connect(str(marts), read_only=True) as con:
        for table in MARTS:
            (rows,) = con.execute(
                f"select string_agg(t::varchar, '\n' order by t::varchar) from {table} as t"
            ).fetchall()[0]
            digest.update(f"{table}\n{rows}\n".encode())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published(demo_warehouse, tmp_path_factory):
    """A data dir after one good run (a copy of the session's demo run), and the content hash
    of what it published. Tests that publish again work on a copy of their own."""
    data_dir = tmp_path_factory.mktemp("published") / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    return data_dir, content_hash(data_dir / "marts.duckdb")


def test_same_inputs_give_identical_marts(published, tmp_path):
    data_dir, expected = published
    again = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)  # the same data dir, nothing new
    assert again.returncode == 0, again.stderr[-3000:]
    assert content_hash(data_dir / "marts.duckdb") == expected
    fresh = run_cdp(tmp_path / "data", CDP_AS_OF=DEMO_AS_OF)  # and from scratch
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert content_hash(tmp_path / "data" / "marts.duckdb") == expected


def test_a_run_costs_what_changed(published, tmp_path):
    """Nothing new: no build, the marts untouched. One changed tab: only what depends on it is
    rebuilt, and the marts equal those of a run from scratch on the same inputs."""
    data_dir = tmp_path / "data"
    shutil.copytree(published[0], data_dir)
    marts = data_dir / "marts.duckdb"
    before = file_hash(marts)
    idle = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)
    assert idle.returncode == 0, idle.stderr[-3000:]
    assert "cdp: nothing new since the last publication" in idle.stdout
    assert "  dbt " not in idle.stdout
    assert file_hash(marts) == before

    sheets = copy_sheets(tmp_path)
    rates = sheets / "fx_rates.csv"
    header, *rows = rates.read_text().splitlines()
    bumped = [  # the euro 1% dearer every day
        f"{day},{code},{float(rate) * 1.01:.4f}" if code == "EUR" else f"{day},{code},{rate}"
        for day, code, rate in (row.split(",") for row in rows)
    ]
    rates.write_text("\n".join([header, *bumped]) + "\n")
    changed = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_SHEETS_URI=str(sheets))
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert re.search(r"cdp: run \S+ builds what depends on raw_sheets/fx_rates\n", changed.stdout)
    log = Path(re.search(r"full log: (\S+)", changed.stdout).group(1)).read_text()
    built = set(re.findall(r"Materialized value (\w+) (\w+)\.", log))
    assert ("marts", "customer_profiles") in built
    assert ("marts", "customer_identities") not in built
    assert not [model for schema, model in built if schema == "identity"]

    fresh = run_cdp(tmp_path / "fresh", CDP_AS_OF=DEMO_AS_OF, CDP_SHEETS_URI=str(sheets))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert content_hash(marts) == content_hash(tmp_path / "fresh" / "marts.duckdb")
    assert content_hash(marts) != published[1]


def copy_sheets(tmp_path: Path) -> Path:
    folder = tmp_path / "sheets"
    shutil.copytree(SEEDS / "sheets", folder)
    return folder


def test_missing_required_column_blocks_and_publishes_nothing(published, tmp_path):
    data_dir, _ = published
    before = file_hash(data_dir / "marts.duckdb")
    sheets = copy_sheets(tmp_path)
    path = sheets / "survey_responses.csv"
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    column = rows[0].index("buys_for")
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([r[:column] + r[column + 1 :] for r in rows])
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_SHEETS_URI=str(sheets))
    assert result.returncode == 1
    assert "buys_for" in result.stderr and "survey_responses" in result.stderr
    assert file_hash(data_dir / "marts.duckdb") == before


def test_failing_dbt_test_builds_nothing_downstream_and_publishes_nothing(published, tmp_path):
    data_dir, _ = published
    before = file_hash(data_dir / "marts.duckdb")
    sheets = copy_sheets(tmp_path)
    # the same domain twice, spelled differently: the raw suite passes, but the staging
    # model normalizes both to one domain and its dbt uniqueness test fails
    with (sheets / "b2b_accounts.csv").open("a", newline="") as fh:
        csv.writer(fh).writerow(["Acme Copy", "@Acme-Logistics.com", "logistics", "10-49", "X"])
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        built = con.execute("select count(*) from marts.customer_profiles").fetchall()[0][0]
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_SHEETS_URI=str(sheets))
    assert result.returncode == 1
    assert "dbt_build" in result.stderr
    assert file_hash(data_dir / "marts.duckdb") == before
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        # identity and marts were not rebuilt from the bad data
        assert con.execute("select count(*) from marts.customer_profiles").fetchall()[0][0] == built


def test_a_reader_never_blocks_publication_nor_sees_a_mix(published, tmp_path):
    """The next night publishes different marts (a later "today" moves segments); a reader
    reopening the file all the while sees the old publication or the new one in full."""
    data_dir = tmp_path / "data"
    shutil.copytree(published[0], data_dir)
    old = fingerprint(data_dir / "marts.duckdb")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(data_dir / "marts.duckdb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = reader.stdout.readline().strip()
        assert reader.stdout.readline().strip() == "open"
        result = run_cdp(data_dir, CDP_AS_OF="2026-11-20")
        assert result.returncode == 0, result.stderr[-3000:]
        time.sleep(1)  # let the reader see the new file a few times
    finally:
        reader.send_signal(signal.SIGTERM)
        out, err = reader.communicate(timeout=60)
    new = fingerprint(data_dir / "marts.duckdb")
    assert new != old  # the two publications differ, so a mix would show
    seen = {first} | set(out.split("\n")) - {""}
    assert seen <= {old, new}, (seen, old, new, err)
    assert {old, new} <= seen  # it read both, before and after the switch


def fingerprint(marts: Path) -> str:
    with duckdb.connect(str(marts), read_only=True) as con:
        return con.execute(FINGERPRINT).fetchone()[0]


# Both tables' content in one value; a mix of two publications matches neither.
FINGERPRINT = (
    "select (select sum(hash(p::varchar)) from customer_profiles as p)::varchar || ':' || "
    "(select sum(hash(s::varchar)) from customer_segments as s)::varchar"
)

# Opens the published file afresh, read-only, again and again, printing each distinct content
# it sees: a reader that opened it before the switch keeps the old file, one after sees the new.
READER = f"""
import signal, sys, duckdb
stop, seen = [], set()
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    with duckdb.connect(sys.argv[1], read_only=True) as con:
        value = con.execute({FINGERPRINT!r}).fetchone()[0]
    if value not in seen:
        seen.add(value)
        print(value, flush=True)
        if len(seen) == 1:
            print("open", flush=True)  # the publication before the run has been read
"""


def test_killed_run_then_rerun_gives_the_clean_result(published, tmp_path):
    _, expected = published
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.pop("DAGSTER_HOME", None)
    env.update(CDP_DATA_DIR=str(data_dir), CDP_AS_OF=DEMO_AS_OF)
    run = subprocess.Popen(
        [str(Path(sys.executable).parent / "cdp"), "run", "-v", "--log-level", "INFO"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    for line in run.stdout:  # wait until dbt builds the marts, then kill everything
        if "dbt_build" in line and "dbt build" in line or time.monotonic() > deadline:
            break
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert not (data_dir / "marts.duckdb").exists()
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)
    assert result.returncode == 0, result.stderr[-3000:]
    assert content_hash(data_dir / "marts.duckdb") == expected


def test_failing_suite_blocks_with_the_expectation_and_sample_keys(published, tmp_path):
    data_dir, _ = published
    before = file_hash(data_dir / "marts.duckdb")
    shop = tmp_path / "shop.sqlite"
    engine = sa.create_engine(f"sqlite:///{shop}")
    load_shop_seeds(engine)
    with engine.begin() as db:  # a feed that lost most emails: a dataset-level problem
        db.execute(
            sa.text(
                "update customers set email = 'unknown', updated_at = "
                "'2026-10-22 05:30:00+00' where customer_id % 5 = 0"
            )
        )
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_SHOP_DB_URL=f"sqlite:///{shop}")
    assert result.returncode == 1
    assert (
        "raw_shop/customers great_expectations: expect_column_values_to_match_regex on "
        "email" in result.stdout
    )
    assert "customer_id" in result.stdout  # sample keys
    assert file_hash(data_dir / "marts.duckdb") == before


def test_a_small_memory_cap_spills_and_one_too_small_names_the_setting(tmp_path):
    spilled = run_cdp(tmp_path / "spill", CDP_AS_OF=DEMO_AS_OF, CDP_DUCKDB_MEMORY_LIMIT="100MB")
    assert spilled.returncode == 0, spilled.stderr[-3000:]

    starved = run_cdp(tmp_path / "starved", CDP_AS_OF=DEMO_AS_OF, CDP_DUCKDB_MEMORY_LIMIT="50MB")
    assert starved.returncode == 1
    assert "CDP_DUCKDB_MEMORY_LIMIT=50MB: DuckDB ran out of memory" in starved.stderr
    assert "Fix: raise CDP_DUCKDB_MEMORY_LIMIT" in starved.stderr
    assert "re-export the day" not in starved.stderr  # the data is not blamed
    assert not (tmp_path / "starved" / "marts.duckdb").exists()
