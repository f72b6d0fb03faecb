"""End-to-end benchmark: generate N persons, run `cdp run` on them, report every stage.

    python bench/run.py --persons 100000 [--postgres URL] [--keep DIR]

Runs a full refresh into an empty data dir, then the nightly increment (one new GA4 export
day and the shop rows changed since), then the same night again with nothing new (what a run
costs beside the increment's own work), and prints per step: wall time, the rows it read and
rows/s; plus peak RSS of the run and the DuckDB settings used. Uses the shop in SQLite unless
--postgres is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

from orchestration.settings import load_settings  # noqa: E402
from orchestration.warehouse import connect  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_pipeline(data_dir: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, run id) of one `cdp run`; the peak is the largest of the run's
    processes (`cdp` and the dbt processes it starts), from wait4's rusage of that run alone."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "cdp"), "run", "--log-level", "WARNING"],
            env={**os.environ, **env, "CDP_DATA_DIR": str(data_dir)},
            cwd=REPO,
            stdout=out,
            stderr=err,
            text=True,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        print(stdout[-5000:], stderr[-5000:], sep="\n")
        raise SystemExit(f"cdp run failed after {seconds:.0f}s")
    run_id = stdout.split("cdp: run ")[-1].split()[0]
    return seconds, usage.ru_maxrss / 1024**2, run_id


def step_report(data_dir: Path, run_id: str) -> list[tuple[str, float, int | None]]:
    """(step, seconds, rows read) for every step of the run, from Dagster's event log."""
    instance = dg.DagsterInstance.local_temp(tempdir=str(data_dir / "dagster"))
    started, finished, rows = {}, {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            finished[event.step_key] = record.timestamp
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            value = event.event_specific_data.materialization.metadata.get("rows_read")
            if value is not None:
                rows[event.step_key] = rows.get(event.step_key, 0) + value.value
    return [
        (step, finished.get(step, start) - start, rows.get(step))
        for step, start in sorted(started.items(), key=lambda kv: kv[1])
    ]


def add_nightly_increment(out: Path, shop_url: str) -> None:
    """A new export day (a copy of the last one, shifted) and 1% of orders changed."""
    days = sorted((out / "ga4").iterdir())
    template = next(d for d in reversed(days) if any(d.glob("*.parquet")))
    new_day = out / "ga4" / "events_20261022"
    with duckdb.connect() as con:
        new_day.mkdir()
        con.execute(
            "copy (select * replace ('20261022' as event_date, event_timestamp + "
            f"86400000000 * (20261022 - {template.name[-8:]}) as event_timestamp) "
            f"from read_parquet('{template}/*.parquet')) "
            f"to '{new_day}/000000000000.parquet' (format parquet)"
        )
    orders = "orders" if shop_url.startswith("sqlite") else "shop.orders"
    with sa.create_engine(shop_url).begin() as db:
        db.execute(
            sa.text(
                f"update {orders} set status = 'delivered', "
                "updated_at = '2026-10-22 05:00:00' where order_id % 100 = 0"
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--postgres")
    parser.add_argument("--keep", type=Path, help="keep the generated data here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cdp-bench-"))
    sources, data_dir = work / "sources", work / "data"
    started = time.perf_counter()
    counts = generate(args.persons, sources, args.postgres)
    print(f"generated {counts} in {time.perf_counter() - started:.0f}s")
    shop_url = args.postgres or f"sqlite:///{sources / 'shop.sqlite'}"
    env = {
        "CDP_GA4_EXPORT_URI": str(sources / "ga4"),
        "CDP_SHOP_DB_URL": shop_url,
        "CDP_SHEETS_URI": str(sources / "sheets"),
        "CDP_AS_OF": "2026-10-22",
    }
    shutil.rmtree(data_dir, ignore_errors=True)
    for label in ("full refresh", "nightly increment", "rerun, nothing new"):
        if label == "nightly increment":
            add_nightly_increment(sources, shop_url)
        seconds, rss, run_id = run_pipeline(data_dir, env)
        print(
            f"\n### {label}: {seconds:.1f}s end to end, peak RSS {rss:.2f} GiB "
            f"({args.persons:,} persons)\n"
        )
        print("| step | seconds | rows read | rows/s |\n|---|---:|---:|---:|")
        for step, step_seconds, rows in step_report(data_dir, run_id):
            rate = f"{rows / step_seconds:,.0f}" if rows and step_seconds else ""
            print(f"| {step} | {step_seconds:.1f} | {rows if rows is not None else ''} | {rate} |")
    with connect(data_dir / "warehouse.duckdb") as con:  # the pipeline's own settings
        settings = con.execute(
            "select current_setting('threads'), current_setting('memory_limit')"
        ).fetchall()[0]
    print(f"\nDuckDB {duckdb.__version__}: threads={settings[0]}, memory_limit={settings[1]}")
    engine = load_settings()
    if engine.engine == "spark":
        print(
            f"dbt on Spark: master={engine.spark_master}, driver memory="
            f"{engine.spark_driver_memory}, shuffle partitions={engine.spark_shuffle_partitions}"
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
