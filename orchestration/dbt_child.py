"""`cdp-dbt`: the dbt command line, ended by the kernel when the run that started it dies.

dbt runs as a child process of the run. Stopped normally, the run asks dbt to finish (an
interrupt forwarded by dagster-dbt), but a run that is killed outright cannot: its dbt kept
running, writing the warehouse and holding its lock while the next run started. Linux's
parent-death signal needs no help from the dying parent. Kept free of heavy imports so dbt
starts as fast as through its own script.
"""

import ctypes
import gc
import os
import signal
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
# dbt commands that run SQL, which on the Spark engine need the session first
SPARK_COMMANDS = {"build", "run", "seed", "test", "snapshot", "show", "run-operation"}
# dbt's options and variables naming a folder relative to where dbt started (the target path is
# relative to the project), made absolute before dbt starts in the data dir
PATH_OPTIONS = ("--project-dir", "--profiles-dir", "--log-path", "--state", "--defer-state")
PATH_VARIABLES = ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "DBT_LOG_PATH", "DBT_STATE")


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; kept across exec, so a
    parent may also call it between fork and exec: `preexec_fn`)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_in_data_dir(argv: list[str], data_dir: Path) -> list[str]:
    """Start dbt inside the data dir, which the profile then names `.`.

    dbt re-parses the whole project (about 10 s) when the profile's connection values differ
    from those of the last parse, and the warehouse's path is one of them: every build in
    another data dir than the last parse's (a first run, a copy of a warehouse, each test)
    paid it. Paths given relative to where dbt was started keep pointing there."""
    started_in = Path.cwd()

    def absolute(path: str) -> str:
        return str(started_in / path) if path else path

    args = []
    for index, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if equals and option in PATH_OPTIONS:
            arg = f"{option}={absolute(value)}"
        elif index and argv[index - 1] in PATH_OPTIONS:
            arg = absolute(arg)
        args.append(arg)
    for name in PATH_VARIABLES:
        if os.environ.get(name):
            os.environ[name] = absolute(os.environ[name])
    if "--project-dir" not in {arg.partition("=")[0] for arg in args}:
        os.environ.setdefault("DBT_PROJECT_DIR", str(started_in))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(data_dir)
    os.environ["CDP_DATA_DIR"] = "."
    return args


def main() -> int:
    parent = os.getppid()
    die_with_parent()
    if sys.platform == "linux" and os.getppid() != parent:  # died before the signal was armed
        return 1
    sys.argv[0] = "dbt"
    from orchestration.settings import load_settings  # light: no dbt, no Spark

    settings = load_settings()
    if settings.engine == "spark" and set(sys.argv[1:2]) & SPARK_COMMANDS:
        return _on_spark()
    if settings.engine == "duckdb":
        sys.argv[1:] = run_in_data_dir(sys.argv[1:], settings.data_dir)
    from dbt.cli.main import cli

    try:
        return cli()  # exits through SystemExit
    finally:
        gc.freeze()  # as `cdp` does (orchestration/cli.py: exit_without_collecting)


def _on_spark() -> int:
    """The Spark engine: sources landed and the session started before dbt, the tables it
    built made readable from DuckDB after (orchestration/spark.py)."""
    from dbt.cli.main import dbtRunner

    from orchestration import spark
    from orchestration.settings import load_settings

    settings = load_settings()
    started = time.perf_counter()
    session = spark.start_session()
    landed = spark.land_sources(session, settings.warehouse_path, settings.data_dir)
    print(
        f"cdp-dbt: Spark session started and {sum(landed.values()):,} source rows landed "
        f"as Parquet in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    result = dbtRunner().invoke(sys.argv[1:])
    spark.mirror_built_tables(settings.warehouse_path, settings.data_dir)
    return 0 if result.success else (2 if result.exception else 1)


if __name__ == "__main__":
    sys.exit(main())
