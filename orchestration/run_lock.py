"""One run at a time per data dir.

Two runs on one `CDP_DATA_DIR` would interleave their steps, fail late on DuckDB's file lock,
or publish marts built from the other run's extracts. Every run therefore holds an exclusive
`flock` on `$CDP_DATA_DIR/run.lock` from its first step to its end: `cdp run` takes it
before starting Dagster, a run launched from the UI takes it when its warehouse resource is
set up. The kernel releases the lock when its process dies, so the lock of a killed run is
taken over by the next one without any clean-up; the file's content (pid, start time,
command) only serves to name the holder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "run.lock"

_held: dict[Path, list] = {}  # lock path -> [open file, depth]: re-entrant within a process
_guard = threading.Lock()


class RunInProgress(Exception):
    """Another process holds the data dir's run lock."""

    def __init__(self, data_dir: Path, holder: dict):
        started = holder.get("started_at", "an unknown time")
        who = f"pid {holder.get('pid', '?')}, started {started}"
        if holder.get("command"):
            who += f": {holder['command']}"
        super().__init__(
            f"another run is in progress on {data_dir} ({who}). Wait for it to finish or stop "
            "it; the lock of a run that died is taken over by the next run."
        )
        self.holder = holder


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's run lock; raise `RunInProgress` at once if another process has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = (data_dir / LOCK_NAME).resolve()
    with _guard:
        entry = _held.get(path)
        if entry:
            entry[1] += 1
        else:
            fh = open(path, "a+")  # noqa: SIM115 (held beyond this block, closed on release)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise RunInProgress(data_dir, _holder(path)) from None
            fh.seek(0)
            fh.truncate()
            fh.write(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                    }
                )
            )
            fh.flush()
            _held[path] = [fh, 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[path]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[path]
                entry[0].close()  # closing the file releases the flock
