"""`cdp run`: the whole pipeline once, through Dagster, with the definitions the UI shows.
`cdp dashboard build|serve`: the marts as web pages; `cdp hash`: a value as masked marts hold it."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import threading
import time
import uuid

import dagster as dg

from orchestration import run_output
from orchestration.run_lock import RunInProgress, run_lock
from orchestration.settings import Settings, load_settings

JOB = "nightly"
UNIT_TESTS_SKIPPED = "cdp: dbt's unit tests skipped: the project and settings are unchanged"
EVERYTHING = "everything (a first publication, or the dbt project, settings or date changed)"


def _instance(data_dir) -> dg.DagsterInstance:
    """Runs are recorded where `dagster dev` can show them: DAGSTER_HOME, else the data dir."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"  # the UI on this folder then starts without warnings
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    # the same files as Dagster's default storage, written through kept connections
    event_log = {
        "module": "orchestration.event_log",
        "class": "KeptConnectionSqliteEventLogStorage",
        "config": {"base_dir": str(home / "history" / "runs")},
    }
    return dg.DagsterInstance.local_temp(
        tempdir=str(home), overrides={"event_log_storage": event_log}
    )


def run(args: argparse.Namespace) -> int:
    if args.command == "dashboard":
        return dashboard(args)
    if args.command == "hash":
        return hash_identifier(args)
    settings = load_settings()
    os.environ["CDP_DATA_DIR"] = str(settings.data_dir)  # absolute for dbt and every step
    print(f"cdp: data dir {settings.data_dir}", flush=True)
    try:
        with run_lock(settings.data_dir):
            return _run_locked(args, settings)
    except RunInProgress as exc:
        print(f"cdp: {exc}", file=sys.stderr)
        return 1


def _run_locked(args: argparse.Namespace, settings: Settings) -> int:
    """Extract, then build what depends on the sources that changed since the last
    publication (orchestration/changes.py), as two Dagster runs of the same job. When
    everything is built whatever the sources hold (the date, the dbt project or a setting
    moved, as on every night, or --full-refresh), one run does both."""
    from orchestration import changes

    if not args.full_refresh and _nothing_new(settings):  # before loading Dagster's
        print(  # definitions: no extract, no build
            "cdp: nothing new since the last publication: no source holds anything it was "
            f"not built from; {settings.marts_path} untouched"
        )
        return 0
    from orchestration.definitions import defs
    from orchestration.defs.dbt.assets import source_keys as build_sources
    from orchestration.defs.pipeline.jobs import steps_config
    from orchestration.defs.publish.assets import EXTRACT_RUN_TAG
    from orchestration.warehouse import connect

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    _import_meanwhile("great_expectations")
    source_keys = build_sources(graph)
    sources = dg.AssetSelection.assets(*source_keys)
    source_names = [key.to_user_string() for key in source_keys]
    first_id = str(uuid.uuid4())
    log_file = run_output.log_path(settings.data_dir, first_id)
    loggers = {"progress": run_output.progress_logger, "file": run_output.file_logger}
    run_config: dict = {"loggers": {"progress": {}, "file": {"config": {"path": str(log_file)}}}}
    if args.verbose:
        loggers["console"] = run_output.console_logger
        run_config["loggers"]["console"] = {"config": {"log_level": args.log_level}}
    job = definitions.resolve_job_def(JOB).with_logger_defs(loggers)
    if args.full_refresh:
        run_config.update(steps_config(job, full_refresh=True))
    today = settings.today().isoformat() + (" (the demo's)" if settings.on_demo_ga4 else "")
    print(f"cdp: run {first_id} started, today = {today}", flush=True)
    started = time.perf_counter()
    log_file.parent.mkdir(parents=True, exist_ok=True)

    def execute(
        run_id: str,
        selection: list[dg.AssetKey] | None,
        tags: dict | None = None,
        config: dict | None = None,
    ) -> dg.ExecuteInProcessResult:
        with contextlib.ExitStack() as quiet:
            if not args.verbose:  # dbt's own lines go to the log file, not the console
                run_output.CONSOLE = sys.stdout
                log = quiet.enter_context(open(log_file, "a", buffering=1))
                quiet.enter_context(contextlib.redirect_stdout(log))
            # closed after the run: SQLite then moves the events from its write-ahead log into
            # the run history's files, as Dagster's own storage leaves them
            instance = quiet.enter_context(_instance(settings.data_dir))
            return job.execute_in_process(
                instance=instance,
                run_config=config or run_config,
                raise_on_error=False,
                run_id=run_id,
                asset_selection=selection,
                tags=tags,
            )

    if args.full_refresh:
        return _report([execute(first_id, None)], settings, started, log_file)
    with connect(settings.warehouse_path) as con:
        published = changes.published_signatures(con)
        build = changes.signatures(con, [], settings)  # the build's own, sources aside
    # dbt's unit tests test the project's SQL: not again on the SQL last published
    unit_tests = changes.definition_changed(published, build)
    build_config = {**run_config, **({} if unit_tests else steps_config(job, unit_tests=False))}
    if changes.changed_sources(published, build, []) is None:
        # everything is built whatever the sources hold: one run extracts, then builds
        print(f"cdp: the run extracts, then builds {EVERYTHING}", flush=True)
        if not unit_tests:
            print(UNIT_TESTS_SKIPPED)
        results = [execute(first_id, None, config=build_config)]
    else:
        results = [execute(first_id, source_keys)]
        if not results[0].success:
            return _report(results, settings, started, log_file)
        with connect(settings.warehouse_path) as con:
            inputs = changes.signatures(con, source_names, settings)
        changed = changes.changed_sources(published, inputs, source_names)
        if changed == []:
            seconds = time.perf_counter() - started
            print(
                f"cdp: nothing new since the last publication: no source changed; "
                f"{settings.marts_path} untouched ({seconds:.1f}s)"
            )
            print(f"     full log: {log_file}")
            return 0
        build_id = str(uuid.uuid4())
        if changed is None:  # the build's signature moved during the extraction (midnight)
            selection = dg.AssetSelection.all() - sources
            why = EVERYTHING
        else:
            keys = [dg.AssetKey.from_user_string(name) for name in changed]
            selection = dg.AssetSelection.assets(*keys).downstream() - sources
            why = "what depends on " + ", ".join(changed)
        print(f"cdp: run {build_id} builds {why}", flush=True)
        if not unit_tests:
            print(UNIT_TESTS_SKIPPED)
        tags = {EXTRACT_RUN_TAG: first_id}
        results.append(execute(build_id, sorted(selection.resolve(graph)), tags, build_config))
    # the publication records what it was built from (orchestration/changes.py)
    return _report(results, settings, started, log_file)


def _import_meanwhile(module: str) -> None:
    """Import `module` on another thread while the run starts. Great Expectations takes 2-3 s
    to import (SciPy, Altair and PySpark with it), which the extract run's checks would spend
    after the extractors; these wait on DuckDB and Postgres with the interpreter free. Started
    once the definitions are loaded: importing both at once took 1.7 s longer to the first
    step, the two imports taking turns on the interpreter. SQLAlchemy's ORM, which both it and
    Dagster's run storage load, is imported first: a module half imported by one thread is
    seen by the other."""
    importlib.import_module("sqlalchemy.orm")
    threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


def _nothing_new(settings: Settings) -> bool:
    from orchestration import changes

    try:
        return changes.nothing_new(settings)
    except Exception:  # a source that cannot be read: the run itself reports why
        return False


def _report(results, settings: Settings, started: float, log_file) -> int:
    seconds = time.perf_counter() - started
    lines = run_output.summary(results, settings.warehouse_path, settings.marts_path)
    published = dg.AssetKey(["published", "marts"]) in {
        e.event_specific_data.materialization.asset_key
        for result in results
        for e in result.get_asset_materialization_events()
    }
    if all(r.success for r in results) and published:
        print("\n".join(lines))
        print(f"cdp: succeeded in {seconds:.1f}s; marts published to {settings.marts_path}")
        print(f"     full log: {log_file}")
        return 0
    print("\n".join(lines), file=sys.stderr)
    failed = [r for r in results if not r.success]
    if not failed:
        print(f"cdp: finished in {seconds:.1f}s but published nothing", file=sys.stderr)
    for result in failed:
        print(f"cdp: run {result.run_id} FAILED after {seconds:.1f}s", file=sys.stderr)
        for step, message in run_output.failures(result):
            print(f"  {step}: {message}", file=sys.stderr)
    print(f"     full log: {log_file}", file=sys.stderr)
    return 1


def dashboard(args: argparse.Namespace) -> int:
    from orchestration import dashboard as site

    settings = load_settings()
    try:
        if args.action == "build":
            started = time.perf_counter()
            target, pages = site.build(settings)
            seconds = time.perf_counter() - started
            print(f"cdp: dashboard built in {seconds:.1f}s: {len(pages)} pages in {target}")
            print("     see it with: cdp dashboard serve")
        else:
            site.serve(settings, args.port)
    except site.DashboardError as exc:
        print(f"cdp: {exc}", file=sys.stderr)
        return 1
    return 0


def hash_identifier(args: argparse.Namespace) -> int:
    """What a masked publication (CDP_PUBLISH_PII=off) holds instead of an email or phone."""
    from orchestration.defs.privacy.erasure import privacy_salt
    from orchestration.defs.privacy.masking import identifier_hash

    settings = load_settings()
    if not settings.privacy_salt and not (settings.data_dir / "privacy.salt").exists():
        print(
            f"cdp: no salt in {settings.data_dir} (privacy.salt) and CDP_PRIVACY_SALT is not "
            "set: hash with the CDP_DATA_DIR of the run that published the marts",
            file=sys.stderr,
        )
        return 1
    try:
        _, digest = identifier_hash(
            privacy_salt(settings.data_dir), args.value, settings.default_phone_region
        )
    except ValueError as exc:
        print(f"cdp: {exc}", file=sys.stderr)
        return 1
    print(digest)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the whole pipeline once")
    run_parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="reload every source from scratch instead of incrementally",
    )
    run_parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print Dagster's and dbt's log on the console (always in the log file)",
    )
    run_parser.add_argument(
        "--log-level", default="INFO", help="console log level with -v (DEBUG, INFO, WARNING)"
    )
    board = commands.add_parser("dashboard", help="the published marts as web pages")
    actions = board.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "build", help="build the pages from marts.duckdb into $CDP_DATA_DIR/dashboard/"
    )
    serve = actions.add_parser("serve", help="serve the built pages, and the lookup, on 127.0.0.1")
    serve.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    hasher = commands.add_parser(
        "hash",
        help="print an email's or phone's hash, as marts published with CDP_PUBLISH_PII=off "
        "hold it (to look a person up)",
    )
    hasher.add_argument("value", help="an email address or a phone number")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `cdp` command; the process ends after it."""
    code = run(build_parser().parse_args(argv))
    exit_without_collecting()
    return code


def exit_without_collecting() -> None:
    """Spare a process that is about to end Python's last garbage collections: they walk
    every object the libraries left behind (about 2 s after a run), to free memory the
    system frees at once. Files, connections and locks are closed by then; atexit handlers
    still run."""
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
