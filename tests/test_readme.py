"""Every command the README shows is run here, so a documented command cannot break unnoticed."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from orchestration.cli import build_parser

from .conftest import DEMO_AS_OF, REPO, run_cdp
from .test_gates import content_hash

README = (REPO / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def inline_commands(program: str) -> list[str]:
    return [c for c in re.findall(r"`([^`\n]+)`", README) if re.match(rf"(\S+=\S+ )*{program} ", c)]


@pytest.fixture
def demo_copy(demo_warehouse, tmp_path) -> Path:
    """A private copy of the demo's data dir after its first run, to run commands on."""
    copy = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, copy)
    return copy


def test_readme_starts_with_the_two_commands_ci_and_tests_use():
    install_and_run, install_and_test = code_blocks("bash")[0].strip().splitlines()
    assert install_and_run.endswith(".venv/bin/cdp run")
    assert install_and_test.endswith(".venv/bin/pytest")
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[dev]'" in ci and ".venv/bin/pytest" in ci


def test_every_cdp_command_in_the_readme_parses():
    commands = inline_commands("cdp") + [
        line.strip() for block in code_blocks("bash") for line in block.splitlines()
    ]
    commands = [c for c in commands if re.match(r"(\S+=\S+ )*(\.venv/bin/)?cdp ", c)]
    assert {"cdp run", "cdp run --full-refresh"} <= set(commands)
    parser = build_parser()
    for command in commands:
        words = shlex.split(command)
        words = words[[i for i, w in enumerate(words) if w.endswith("cdp")][0] + 1 :]
        parser.parse_args(words)  # exits (SystemExit) on an unknown command or option


def test_full_refresh_after_an_incremental_run_reloads_and_publishes_the_same(demo_copy):
    before = content_hash(demo_copy / "marts.duckdb")
    with duckdb.connect(str(demo_copy / "warehouse.duckdb"), read_only=True) as con:
        keys_before = con.execute(
            "select customer_key, created_at, created_run_id "
            "from identity.int_identity__customer_keys"
        ).fetchall()
        merges_before = con.execute(
            "select * from identity.int_identity__customer_key_merges"
        ).fetchall()
    started = duckdb.connect().execute("select now()").fetchone()[0]

    result = run_cdp(demo_copy, "--full-refresh", CDP_AS_OF=DEMO_AS_OF)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert content_hash(demo_copy / "marts.duckdb") == before
    with duckdb.connect(str(demo_copy / "warehouse.duckdb"), read_only=True) as con:
        for table in ("raw_ga4.events", "raw_shop.customers", "raw_shop.order_items"):
            oldest = con.execute(f"select min(_loaded_at) from {table}").fetchone()[0]
            assert oldest >= started, f"{table} was not reloaded"
        # keys and their history continue: same keys, created by the same (first) run
        assert sorted(
            con.execute(
                "select customer_key, created_at, created_run_id "
                "from identity.int_identity__customer_keys"
            ).fetchall()
        ) == sorted(keys_before)
        assert con.execute(
            "select * from identity.int_identity__customer_key_merges"
        ).fetchall() == (merges_before)


def launch_configs() -> list[dict]:
    """The run configs the README gives for launching from the UI."""
    return [yaml.safe_load(block) for block in code_blocks("yaml")]


def test_readme_launch_configs_are_valid_for_the_nightly_job():
    from orchestration.definitions import defs

    configs = launch_configs()
    documented = {(op, key) for c in configs for op, v in c["ops"].items() for key in v["config"]}
    assert {("raw_ga4__events", "reload_days"), ("raw_ga4__events", "full_refresh")} <= documented
    assert {("shop_tables", "full_refresh"), ("dbt_build", "full_refresh")} <= documented
    job = defs().resolve_job_def("nightly")
    for config in configs:
        assert dg.validate_run_config(job, config)


def test_readme_reload_days_reloads_exactly_that_day(demo_copy, monkeypatch):
    (config,) = [c for c in launch_configs() if "reload_days" in str(c)]
    day = config["ops"]["raw_ga4__events"]["config"]["reload_days"][0]
    monkeypatch.setenv("CDP_DATA_DIR", str(demo_copy))
    from orchestration.definitions import defs

    job = defs().resolve_job_def("nightly")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            run_config=config,
            instance=instance,
            asset_selection=[dg.AssetKey(["raw_ga4", "events"])],
        )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw_ga4__events")
    assert materialization.metadata["days_loaded"].value == f"events_{day}"


def marts_queries() -> list[str]:
    blocks = [b for b in code_blocks("sql") if "marts.duckdb" in b]
    assert blocks, "the README shows no query on the published marts"
    return [q.strip() for block in blocks for q in block.split(";") if q.strip()]


def test_readme_example_queries_run_on_the_published_marts(demo_warehouse):
    queries = marts_queries()
    assert len(queries) >= 7
    with duckdb.connect(str(demo_warehouse.parent / "marts.duckdb"), read_only=True) as con:
        # on the demo, "today" is the morning after its last export day
        answered = [
            bool(con.execute(query.replace("current_date", f"date '{DEMO_AS_OF}'")).fetchall())
            for query in queries
        ]
    # every query runs; all but the merge lookup (no two demo persons merge) find rows
    assert answered == [True] * (len(queries) - 1) + [False], answered


def test_readme_quarantine_query_runs_on_the_build_warehouse(demo_warehouse):
    queries = [b.strip().rstrip(";") for b in code_blocks("sql") if "quarantine." in b]
    assert queries
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        for query in queries:
            con.execute(query).fetchall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def test_readme_ui_command_shows_the_definitions_and_the_runs_cdp_recorded(demo_copy):
    (command,) = {c for c in inline_commands(r"\S*dg") if " dev" in c}
    home, program, *args = shlex.split(command)
    assert home == "DAGSTER_HOME=$PWD/data/dagster" and program == ".venv/bin/dg"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.update(DAGSTER_HOME=str(demo_copy / "dagster"), CDP_DATA_DIR=str(demo_copy))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dg"), *args, "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its webserver, daemon and code servers go down together
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = graphql(
                    port,
                    "{ workspaceOrError { ... on Workspace { locationEntries { name "
                    "locationOrLoadError { __typename ... on PythonError { message } "
                    "... on RepositoryLocation { repositories { jobs { name } } } } } } } "
                    "runsOrError { ... on Runs { results { status } } } }",
                )
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "UI did not start"
                time.sleep(1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output, _ = server.communicate()
    (location,) = data["workspaceOrError"]["locationEntries"]
    assert location["name"] == "cdp"
    loaded = location["locationOrLoadError"]
    assert loaded["__typename"] == "RepositoryLocation", loaded
    jobs = {j["name"] for repo in loaded["repositories"] for j in repo["jobs"]}
    assert "nightly" in jobs
    statuses = [r["status"] for r in data["runsOrError"]["results"]]
    assert statuses and set(statuses) == {"SUCCESS"}  # the runs `cdp run` recorded
    assert "does not match the name" not in output  # the code location is named once
    # What `dg dev` says while going down after the signal is not about the project: a code
    # server may exit before the supervisor notices the shutdown and warn that it restarts it.
    startup = re.split(r"KeyboardInterrupt received|Shutting down Dagster", output)[0]
    assert "WARNING" not in startup and "does not match" not in startup, output


def test_the_marts_reference_is_current_with_the_dbt_models():
    from orchestration.reference import MARTS_DOC, render_marts

    assert MARTS_DOC.read_text() == render_marts(), "run: python -m orchestration.reference"


def test_every_dbt_column_entry_holds_only_known_keys():
    """In a flow-style entry `{name: x, description: a, b}` an unquoted comma ends the
    description and makes `b` a key: the docs would silently lose the rest of the text."""
    import yaml

    known = {"name", "data_type", "description", "data_tests", "constraints", "meta", "config"}
    strays = []
    for path in (REPO / "dbt_project").glob("[ms]*/**/*.yml"):
        for kind in ("models", "seeds", "sources"):
            for node in (yaml.safe_load(path.read_text()) or {}).get(kind) or []:
                for column in node.get("columns") or []:
                    if set(column) - known:
                        strays.append((path.name, node["name"], column["name"]))
    assert not strays


def test_nothing_in_the_repository_points_outside_it():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"\.\./" + "shared|" + "CONTRACT" + " §")  # spelled apart: found nowhere
    offenders = [
        name
        for name in tracked
        if (REPO / name).is_file() and outside.search((REPO / name).read_text(errors="ignore"))
    ]
    assert offenders == []
    for link in re.findall(r"\]\(([^)#]+)", README):  # every relative link resolves
        if not link.startswith("http"):
            assert (REPO / link).exists(), link


def test_cdp_run_output_fits_on_a_screen_and_matches_the_marts(demo_warehouse):
    output = (demo_warehouse.parent.parent / "cdp_run.stdout").read_text()
    lines = output.splitlines()
    assert len(lines) <= 30, output
    assert "Running with dbt" not in output  # dbt's own lines are in the log file
    log = re.search(r"full log: (\S+)", output).group(1)
    assert "Running with dbt" in Path(log).read_text()
    stages = [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]
    assert {"extract", "privacy", "dbt", "publish", "checks", "quarantined"} <= set(stages)
    checks = re.search(r"checks +(\d+) passed, (\d+) failed", output)
    assert int(checks.group(1)) >= 50 and checks.group(2) == "0"
    with duckdb.connect(str(demo_warehouse.parent / "marts.duckdb"), read_only=True) as con:
        profiles = con.execute("select count(*) from customer_profiles").fetchone()[0]
        device_only = con.execute(
            "select count(*) from (select customer_key from customer_identities "
            "group by 1 having bool_and(identifier_type = 'device'))"
        ).fetchone()[0]
    assert f"customer_profiles {profiles:,}" in output
    assert f"{profiles - device_only:,} known by account, email or phone" in output
    assert f"{device_only:,} web/app visitors known only by a device" in output


def test_readme_dbt_docs_command_documents_the_marts(demo_copy, tmp_path):
    (command,) = {c for c in inline_commands(r"\S*dbt") if "docs generate" in c}
    generate = shlex.split(command.split(" && ")[0])
    assert generate[0] == "CDP_DATA_DIR=$PWD/data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env["CDP_DATA_DIR"] = str(demo_copy)
    target = tmp_path / "target"  # not the project's own target/, which the runs use
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *generate[2:], "--target-path", str(target)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    catalog = json.loads((target / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"customer_profiles", "customer_segments", "stg_ga4__events"} <= documented
    assert (target / "index.html").exists()
