import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DEMO_AS_OF = "2026-10-22"
PG_ADMIN_URL = os.environ.get(
    "CDP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def unreachable(reason: str):
    """Skip on a laptop without the server; under CI=true a missing server is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: tests that need it must run)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url():
    """A fresh Postgres database for one test, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        conn = admin.connect()
    except sa.exc.OperationalError as exc:
        unreachable(f"Postgres not reachable at {PG_ADMIN_URL}: {exc.orig}")
    name = f"cdp_test_{uuid.uuid4().hex[:10]}"
    conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        conn.close()
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty CDP_DATA_DIR; every other CDP_* variable at its default."""
    for name in list(os.environ):
        if name.startswith("CDP_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("CDP_DATA_DIR", str(path))
    return path


def cdp_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a user's `cdp run`: the demo unless `env` says otherwise."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    clean.pop("DAGSTER_HOME", None)
    clean.update(env, CDP_DATA_DIR=str(data_dir))
    return clean


def cdp_command(*args: str) -> list[str]:
    import sys

    return [str(Path(sys.executable).parent / "cdp"), "run", "--log-level", "WARNING", *args]


def run_cdp(data_dir: Path, *args: str, **env: str):
    """`cdp run` in a subprocess, as a user runs it, on the demo unless `env` says otherwise."""
    import subprocess

    return subprocess.run(
        cdp_command(*args),
        env=cdp_env(data_dir, **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory, worker_id) -> Path:
    """The build warehouse after one `cdp run` on the demo (shared; open it read-only).

    Built once per test session, not once per xdist worker: the first worker to get here
    builds it under a lock in the folder the workers share, the others wait and reuse it.
    "Today" is fixed to the morning after the demo's last full export day."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    data_dir = shared / "demo" / "data"
    built = data_dir.parent / "cdp_run.stdout"  # what the user saw, written once it succeeded
    with FileLock(str(shared / "demo.lock")):
        if not built.exists():
            result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            built.write_text(result.stdout)
    return data_dir / "warehouse.duckdb"


# Fixtures that run the whole pipeline; a test using one, or calling `cdp run` itself, is
# marked `slow`, so `pytest -m "not slow"` is the quick loop while CI runs everything.
SLOW_FIXTURES = {"demo_warehouse", "published", "requests_run"}


# The modules that take longest (minutes each: see the durations pytest lists at the end), handed
# to the two workers first, so that no long module starts when the other worker is nearly done.
LONGEST_MODULES = [
    "test_gates",
    "test_engines",
    "test_per_person",
    "test_intraday",
    "test_bench_smoke",
    "test_incremental_identity",
    "test_privacy",
    "test_identity",
]


def pytest_collection_modifyitems(items):
    import inspect

    def longest_first(item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=longest_first)  # stable: each module's tests keep their order
    for item in items:
        source = inspect.getsource(item.function) if hasattr(item, "function") else ""
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or any(
            call in source for call in ("run_cdp(", "cdp_command(", "execute_in_process(")
        ):
            item.add_marker(pytest.mark.slow)
