"""One run at a time per data dir; a killed run leaves neither a lock nor dbt behind."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.run_lock import LOCK_NAME, RunInProgress, run_lock

from .conftest import DEMO_AS_OF, REPO, cdp_command, cdp_env, run_cdp


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def seconds_running(pid: int) -> float:
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0.0
    return uptime - started / os.sysconf("SC_CLK_TCK")


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def lock_holder(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def hold_lock_in_another_process(data_dir: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from orchestration.run_lock import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(600)",
            str(data_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_cdp_run_refuses_at_once_naming_the_running_one(tmp_path):
    data_dir = tmp_path / "data"
    first = subprocess.Popen(
        cdp_command(),
        env=cdp_env(data_dir, CDP_AS_OF=DEMO_AS_OF),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: lock_holder(data_dir).get("pid") == first.pid, what="the first run")
        started = time.monotonic()
        second = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)
        refused_after = time.monotonic() - started
        assert second.returncode == 1
        assert "another run is in progress" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "cdp run" in second.stderr
        assert refused_after < 15, refused_after
        out, err = first.communicate(timeout=900)
        assert first.returncode == 0, err[-3000:]  # the first run was not disturbed
    finally:
        first.kill()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = hold_lock_in_another_process(tmp_path)
    with pytest.raises(RunInProgress, match=f"pid {holder.pid}"), run_lock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    with run_lock(tmp_path), run_lock(tmp_path):  # re-entrant within one process
        assert lock_holder(tmp_path)["pid"] == os.getpid()


def test_a_run_launched_beside_a_running_one_fails_before_doing_anything(data_dir):
    holder = hold_lock_in_another_process(data_dir)
    try:
        from orchestration.definitions import defs

        job = defs().resolve_job_def("nightly")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                asset_selection=[dg.AssetKey(["raw_sheets", "b2b_accounts"])],
            )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_failure)
        assert "another run is in progress" in str(failure.event_specific_data)
        assert not (data_dir / "warehouse.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()


def test_killing_cdp_run_stops_its_dbt_process(tmp_path):
    run = subprocess.Popen(
        cdp_command(),
        env=cdp_env(tmp_path / "data", CDP_AS_OF=DEMO_AS_OF),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def dbt_child():
            for pid in descendants(run.pid):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if (
                    any(part.endswith(b"/cdp-dbt") for part in cmdline)
                    and b"build" in cmdline
                    and seconds_running(pid) > 1  # past its start-up, when it arms the signal
                ):
                    return pid
            return None

        dbt = wait_for(dbt_child, timeout=300, what="dbt to start")
        # a dbt busy on a long model writes nothing, so nothing tells it that cdp is gone:
        # stop it (it would otherwise finish the demo's small build first), then kill cdp
        # the way no handler can see
        os.kill(dbt, signal.SIGSTOP)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)

        def gone() -> bool:
            try:
                state = Path(f"/proc/{dbt}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return True
            return state == "Z"

        wait_for(gone, timeout=30, what=f"dbt (pid {dbt}) to stop")
    finally:
        run.kill()
        with contextlib.suppress(NameError, ProcessLookupError):
            os.kill(dbt, signal.SIGKILL)
