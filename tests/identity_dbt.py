"""Run the project's identity models with dbt on a warehouse a test prepared by hand."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR


def dbt(
    data_dir: Path,
    *args: str,
    run_id: str = "test",
    variables: dict | None = None,
    definition: str | None = None,
):
    """dbt with this warehouse (`data_dir/warehouse.duckdb`), its own target and log folders
    (tests run side by side), issuing keys and merges in the name of `run_id`. With a
    `definition` (CDP_BUILD_DEFINITION, as `cdp` sets it) kept models see the same project
    from build to build; without, every build is a new one to them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.update(CDP_DATA_DIR=str(data_dir), DAGSTER_RUN_ID=run_id)
    if definition:
        env["CDP_BUILD_DEFINITION"] = definition
    command = [
        str(Path(sys.executable).parent / "cdp-dbt"),
        *args,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(data_dir / "dbt-target"),
        "--log-path", str(data_dir / "dbt-logs"),
    ]  # fmt: skip
    if variables:
        command += ["--vars", json.dumps(variables)]
    parsed = data_dir / "dbt-target" / "partial_parse.msgpack"
    last = last_parse(variables)
    if last.exists():
        parsed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(last, parsed)
    result = subprocess.run(command, env=env, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if result.returncode == 0 and parsed.exists():
        last.parent.mkdir(exist_ok=True)
        handle, unique = tempfile.mkstemp(dir=last.parent)
        os.close(handle)
        shutil.copyfile(parsed, unique)
        os.replace(unique, last)  # whole, for builds running beside this one
    return result


def last_parse(variables: dict | None) -> Path:
    """dbt's partial-parse state after the last build with these variables, shared by the
    tests: each has a target folder of its own, and without it every build here would parse
    the whole project again (dbt does when the variables differ from its last parse's). Kept
    apart per checkout: a parse holds its project's absolute paths (a seed's file, for one),
    and dbt does not check them when it reuses it."""
    scope = {"project": str(DBT_PROJECT_DIR.resolve()), "vars": variables or {}}
    key = hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()
    folder = Path(tempfile.gettempdir()) / f"cdp-test-dbt-parses-{os.getuid()}"
    return folder / f"{key[:16]}.msgpack"


def no_erasures(data_dir: Path) -> None:
    """The table the erasure step keeps, empty: stitching reads it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("create schema if not exists privacy")
        con.execute(
            "create table if not exists privacy.erased_identifiers (identifier_type varchar, "
            "identifier_hash varchar, recorded_at timestamptz)"
        )
