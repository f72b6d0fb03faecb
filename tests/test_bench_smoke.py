"""The benchmark command at a tiny scale, so it keeps working (the real runs are not CI's)."""

import re
import subprocess
import sys

from .conftest import REPO


def test_benchmark_runs_end_to_end_at_tiny_scale(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--persons",
            "1000",
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for run in ("full refresh", "nightly increment", "rerun, nothing new", "intraday"):
        assert f"### {run}" in result.stdout
    assert "| raw_ga4__events |" in result.stdout
    peaks = [float(v) for v in re.findall(r"peak RSS ([0-9.]+) GiB", result.stdout)]
    assert len(peaks) == 5 and all(peak > 0.1 for peak in peaks)  # each run's own processes
    # and the CPU time of each run's processes, dbt's included
    cpu = re.findall(r"CPU ([0-9.]+) s user \+ ([0-9.]+) s system", result.stdout)
    assert len(cpu) == 5 and all(float(user) > 0 for user, _ in cpu)
    assert float(cpu[0][0]) > 5  # the full refresh: dbt's processes are counted
    # the rewritten intraday shard recomputes the persons of its devices, not everyone
    rewritten = re.search(r"### intraday, the shard rewritten: [^\n]*", result.stdout)
    assert rewritten and "recomputed" in rewritten.group(0)
    assert "(everyone)" not in rewritten.group(0)
    assert (tmp_path / "data" / "marts.duckdb").exists()
    assert "| rerun, nothing new ≤ 10 s |" in result.stdout  # the targets, met or not


def test_stitching_benchmark_agrees_with_networkx_at_tiny_scale():
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "stitching.py"),
            "--nodes",
            "20000",
            "--engines",
            "cdp,networkx",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| cdp |" in result.stdout and "| networkx |" in result.stdout
    assert "networkx: the same partition as cdp" in result.stdout
