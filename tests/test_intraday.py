"""A day of intraday shards through the `source_changes` sensor, then the daily shard."""

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from .conftest import DEMO_AS_OF, REPO, SEEDS, cdp_env, run_cdp
from .test_gates import content_hash
from .test_per_person import last_build

# What the Dagster daemon does at each interval: evaluate the sensor, launch what it asks for.
SENSOR_TICK = """
import json
import dagster as dg
from orchestration.definitions import defs
from orchestration.defs.pipeline.schedules import source_changes
from orchestration.settings import load_settings

definitions = defs()
home = load_settings().data_dir / "dagster"
instance = dg.DagsterInstance.local_temp(tempdir=str(home))
request = source_changes(dg.build_sensor_context(instance=instance, definitions=definitions))
if isinstance(request, dg.SkipReason):
    print(json.dumps({"skipped": request.skip_message}))
else:
    result = definitions.resolve_job_def("nightly").execute_in_process(
        instance=instance, asset_selection=request.asset_selection, tags=request.tags,
        raise_on_error=False,
    )
    print(json.dumps({"success": result.success, "trigger": request.tags["cdp/trigger"]}))
"""
DAY = "20261022"
INTRADAY = SEEDS / "ga4" / f"events_intraday_{DAY}" / "000000000000.json"


def tick(data_dir: Path, export: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SENSOR_TICK],
        env=cdp_env(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_GA4_EXPORT_URI=str(export)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def newest_device_sighting(marts: Path) -> dt.datetime:
    with duckdb.connect(str(marts), read_only=True) as con:
        return con.execute(
            "select max(last_seen_at) from customer_identities where identifier_type = 'device'"
        ).fetchall()[0][0]


def newest_event(lines: list[str]) -> dt.datetime:
    stamps = [
        int(event["event_timestamp"])
        for event in map(json.loads, lines)
        if event.get("user_pseudo_id")
    ]
    return dt.datetime.fromtimestamp(max(stamps) / 1e6, dt.UTC)


def test_intraday_shards_reach_the_marts_each_interval_and_the_daily_shard_settles_them(
    tmp_path,
):
    export, data_dir = tmp_path / "export", tmp_path / "data"
    shutil.copytree(SEEDS / "ga4", export, ignore=shutil.ignore_patterns("events_intraday_*"))
    first = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_GA4_EXPORT_URI=str(export))
    assert first.returncode == 0, first.stderr[-3000:]
    marts = data_dir / "marts.duckdb"
    assert newest_device_sighting(marts) < dt.datetime(2026, 10, 22, tzinfo=dt.UTC)

    lines = INTRADAY.read_text().splitlines()
    shard = export / f"events_intraday_{DAY}" / "000000000000.json"
    shard.parent.mkdir()
    three_am = dt.datetime(2026, 10, 22, 3, tzinfo=dt.UTC).timestamp() * 1e6
    morning = [line for line in lines if int(json.loads(line)["event_timestamp"]) < three_am]
    assert 0 < len(morning) < len(lines)
    for exported in (morning, lines):  # GA4 rewrites the intraday shard as the day goes on
        shard.write_text("\n".join(exported) + "\n")
        assert tick(data_dir, export) == {"success": True, "trigger": "raw_ga4/events"}
        # the marts hold every event the export held when the interval began
        assert newest_device_sighting(marts) == newest_event(exported)
        # a rewritten shard costs the persons of its devices, not everyone
        assert last_build(data_dir)["this_build:everyone"] == "false"
    assert "skipped" in tick(data_dir, export)  # nothing new: no run
    # the sensor's publications recorded what they were built from: `cdp run` finds nothing
    rerun = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_GA4_EXPORT_URI=str(export))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "nothing new since the last publication" in rerun.stdout

    # the daily shard replaces the intraday one: the marts are those of a full refresh (on the
    # same data dir: the keys issued and merged through the day are kept, as they must be)
    daily = export / f"events_{DAY}" / "000000000000.json"
    daily.parent.mkdir()
    shutil.copy(shard, daily)
    assert tick(data_dir, export) == {"success": True, "trigger": "raw_ga4/events"}
    assert last_build(data_dir)["this_build:everyone"] == "false"
    settled, day_events = content_hash(marts), raw_day_events(data_dir)
    refreshed = run_cdp(
        data_dir, "--full-refresh", CDP_AS_OF=DEMO_AS_OF, CDP_GA4_EXPORT_URI=str(export)
    )
    assert refreshed.returncode == 0, refreshed.stderr[-3000:]
    assert content_hash(marts) == settled
    # the day once, not its intraday and daily shards both
    assert raw_day_events(data_dir) == day_events > 0


def raw_day_events(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        day = f"select count(*) from raw_ga4.events where event_date = '{DAY}'"
        return con.execute(day).fetchall()[0][0]
