"""`cdp run`: the whole pipeline once, through Dagster, with the definitions the UI shows."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import dagster as dg

from orchestration.run_lock import RunInProgress, run_lock
from orchestration.settings import Settings, load_settings

JOB = "nightly"


def _instance(data_dir) -> dg.DagsterInstance:
    """Runs are recorded where `dagster dev` can show them: DAGSTER_HOME, else the data dir."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.local_temp(tempdir=str(home))


def _summary(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        meta = {k: v.value for k, v in materialization.metadata.items()}
        counts = ""
        if "rows_read" in meta:
            counts = (
                f"{meta['rows_read']:>8} read {meta['rows_loaded']:>8} loaded "
                f"{meta['rows_quarantined']:>5} quarantined"
            )
        total = meta.get("dagster/row_count")
        suffix = f"  ({total} rows in table)" if total is not None else ""
        lines.append(f"  {materialization.asset_key.to_user_string():<40} {counts}{suffix}")
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            if not check.passed:
                why = f": {check.description}" if check.description else ""
                lines.append(
                    f"  check failed: {check.asset_key.to_user_string()} {check.check_name}{why}"
                )
    return lines


def _failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """Each failed step with the first line of its error: source, object and fix."""
    failures = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.event_specific_data
        message = (
            (data.user_failure_data and data.user_failure_data.description)
            or _expected_failure(data.error)
            or (data.error and (data.error.cause or data.error).message)
        )
        failures.append((event.step_key, (message or "see the log above").strip()))
    return failures


def _expected_failure(error) -> str | None:
    """The description of a `dg.Failure` in an error's chain (the step's own error, or the
    cause of its retries running out): a failure the code expected, whose message says what to
    fix, so its traceback helps nobody on the console."""
    while error is not None:
        if error.cls_name == "Failure":
            return error.message.split(": ", 1)[-1].strip()
        error = error.cause
    return None


def _without_expected_tracebacks(record) -> bool:
    """Console filter: an expected failure is logged as one line; the run's event log (the
    UI) keeps the whole error."""
    meta = getattr(record, "dagster_meta", None) or {}
    data = getattr(meta.get("dagster_event"), "event_specific_data", None)
    description = _expected_failure(getattr(data, "error", None))
    if description:
        first_line = str(record.msg).split("\n")[0]
        record.msg = f"{first_line} {description}"
    return True


@dg.logger(
    dg.colored_console_logger.config_schema,
    description="Dagster's console logger, expected failures shown without a traceback.",
)
def _console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = dg.colored_console_logger.logger_fn(init_context)
    logger.addFilter(_without_expected_tracebacks)
    return logger


def run(args: argparse.Namespace) -> int:
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
    from orchestration.definitions import defs
    from orchestration.defs.pipeline.jobs import full_refresh_run_config

    job = defs().resolve_job_def(JOB).with_logger_defs({"console": _console_logger})
    run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if args.full_refresh:
        run_config.update(full_refresh_run_config(job))
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=_instance(settings.data_dir), run_config=run_config, raise_on_error=False
    )
    seconds = time.perf_counter() - started
    print("\n".join(["cdp: materialized", *_summary(result)]))
    if not result.success:
        print(f"cdp: run {result.run_id} FAILED after {seconds:.1f}s", file=sys.stderr)
        for step, message in _failures(result):
            print(f"  {step}: {message}", file=sys.stderr)
        return 1
    published = dg.AssetKey(["published", "marts"]) in {
        e.event_specific_data.materialization.asset_key
        for e in result.get_asset_materialization_events()
    }
    if not published:
        print(
            f"cdp: run {result.run_id} finished in {seconds:.1f}s but published nothing",
            file=sys.stderr,
        )
        return 1
    print(
        f"cdp: run {result.run_id} succeeded in {seconds:.1f}s; marts published to "
        f"{settings.marts_path} (build warehouse {settings.warehouse_path})"
    )
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
        "--log-level", default="INFO", help="Dagster console log level (DEBUG, INFO, WARNING)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
