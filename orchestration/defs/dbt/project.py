"""The dbt project, with a manifest that is never stale when definitions load.

A manifest older than the models would silently drop lineage (dbt sources stop depending on
the extract assets), so it is re-parsed whenever any project file is newer than it.
"""

import fcntl
import os
import shutil
import subprocess
import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from orchestration.settings import DBT_PROJECT_DIR, dbt_project_files, load_settings

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target_path=load_settings().dbt_target_path,
)
# dagster-dbt gives each build a target folder of its own and copies the partial-parse file
# into it from DBT_TARGET_PATH (default `target`): pointing it at the folder `dbt parse` writes
# to spares every build a full parse of the project.
os.environ.setdefault("DBT_TARGET_PATH", str(dbt_project.target_path))
# dbt beside this interpreter, so an unactivated virtualenv (cron, CI) works; through
# `cdp-dbt`, which ends with the run that started it (orchestration/dbt_child.py).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "cdp-dbt")


class DbtCli(DbtCliResource):
    """dagster-dbt's resource without two things it does before every build for features this
    project does not use: asking the dbt executable its version (dbt started once more, ~1.3 s)
    and loading dbt's adapter into this process (~1.6 s), which only the column and row-count
    metadata fetches need. `cdp-dbt` runs the dbt-core installed here, so that is the version."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_env() -> dict[str, str]:
    """The environment dbt runs with: the settings it reads with `env_var`, resolved."""
    return {**os.environ, **load_settings().dbt_env()}


def reuse_parse(target_path: Path) -> None:
    """Give a dbt invocation with a target folder of its own the project's last parse, as
    dagster-dbt does for the builds it runs: dbt then re-parses only the files that changed.
    Always this checkout's: a parse names its project's absolute paths (a seed's file), and
    dbt reuses one left in the target folder by another checkout without noticing."""
    parsed = DBT_PROJECT_DIR / dbt_project.target_path / "partial_parse.msgpack"
    if parsed.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parsed, target_path / parsed.name)


def ensure_manifest() -> Path:
    """Parse the project when a file is newer than its manifest; processes starting side by
    side (test workers, the UI and a run) parse one after the other, not into the same files
    at once, and the later ones find the manifest current."""
    manifest = dbt_project.manifest_path
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / "parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _stale(manifest):
            _parse()
    return manifest


def _stale(manifest: Path) -> bool:
    newest = max(f.stat().st_mtime for f in dbt_project_files())
    return not manifest.exists() or manifest.stat().st_mtime < newest


def _parse() -> None:
    parsed = subprocess.run(
        [
            DBT_EXECUTABLE,
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(dbt_project.target_path),
        ],
        env=dbt_env(),
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    if parsed.returncode != 0:
        raise RuntimeError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{parsed.stdout[-4000:]}")


ensure_manifest()
