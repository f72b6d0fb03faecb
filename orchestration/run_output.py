"""What `cdp run` shows: one line per stage as it finishes and a closing summary on the console;
every Dagster and dbt log line in `$CDP_DATA_DIR/logs/<run id>.log` (and in the UI).

Both are Dagster loggers, so they see the run's events as they happen: the progress logger
turns step and materialization events into lines a person reads, the file logger keeps
everything. `cdp run -v` adds Dagster's own console logger.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb

# Where progress goes: the console, also while the run's own stdout (dbt's lines, which
# dagster-dbt echoes there) is sent to the log file.
CONSOLE = sys.stdout

# step key -> (stage, what it does); checks are counted, not listed
STEPS = {
    "raw_ga4__events": ("extract", "GA4 export -> raw_ga4.events"),
    "shop_tables": ("extract", "shop database -> raw_shop"),
    "sheets_tabs": ("extract", "Google Sheets -> raw_sheets"),
    "privacy__erased_identifiers": ("privacy", "erasure requests"),
    "dbt_build": ("dbt", "staging, identity, marts"),
    "privacy__access_exports": ("privacy", "access exports"),
    "published__marts": ("publish", "marts.duckdb"),
}


def log_path(data_dir: Path, run_id: str) -> Path:
    return data_dir / "logs" / f"{run_id}.log"


def expected_failure(error) -> str | None:
    """The description of a `dg.Failure` in an error's chain (the step's own error, or the
    cause of its retries running out): a failure the code expected, whose message says what to
    fix, so its traceback helps nobody on the console."""
    while error is not None:
        if error.cls_name == "Failure":
            return error.message.split(": ", 1)[-1].strip()
        error = error.cause
    return None


def _event(record: logging.LogRecord):
    return (getattr(record, "dagster_meta", None) or {}).get("dagster_event")


def _without_expected_tracebacks(record: logging.LogRecord) -> bool:
    """An expected failure is logged as one line; the run's event log keeps the whole error."""
    data = getattr(_event(record), "event_specific_data", None)
    description = expected_failure(getattr(data, "error", None))
    if description:
        record.msg = f"{str(record.msg).splitlines()[0]} {description}"
    return True


@dg.logger(
    dg.colored_console_logger.config_schema,
    description="Dagster's console logger, expected failures shown without a traceback.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = dg.colored_console_logger.logger_fn(init_context)
    logger.addFilter(_without_expected_tracebacks)
    return logger


@dg.logger(
    {"path": dg.Field(str)},
    description="Every log line of the run, DEBUG and up, into one file.",
)
def file_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    path = Path(init_context.logger_config["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.Logger("cdp_file", level=logging.DEBUG)
    logger.addHandler(handler)
    return logger


class _Progress(logging.Handler):
    """One console line per finished stage, from the run's events."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.started: dict[str, float] = {}
        self.loaded: Counter = Counter()
        self.quarantined: Counter = Counter()
        self.tables: Counter = Counter()
        self.checks: Counter = Counter()
        self.meta: dict[str, dict] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = _event(record)
        if event is None or not event.step_key:
            return
        step, kind = event.step_key, event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
        elif kind == "ASSET_MATERIALIZATION":
            meta = {
                k: v.value for k, v in event.event_specific_data.materialization.metadata.items()
            }
            self.loaded[step] += meta.get("rows_loaded", 0) or 0
            self.quarantined[step] += meta.get("rows_quarantined", 0) or 0
            self.tables[step] += 1
            self.meta.setdefault(step, {}).update(meta)
        elif kind == "ASSET_OBSERVATION":  # what dbt_build tells of the identities once done
            observation = event.event_specific_data.asset_observation
            self.meta.setdefault(step, {}).update(
                {k: v.value for k, v in observation.metadata.items()}
            )
        elif kind == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            outcome = "passed" if check.passed else check.severity.value.lower()
            self.checks[(step, outcome)] += 1
            if not check.passed:
                why = f": {check.description}" if check.description else ""
                self._line(
                    "check",
                    f"{outcome.upper()} {check.asset_key.to_user_string()} {check.check_name}{why}",
                )
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step in STEPS:
            stage, what = STEPS[step]
            seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
            detail = "FAILED" if kind == "STEP_FAILURE" else self._detail(step)
            self._line(stage, f"{what:<32} {detail:<44} {seconds:6.1f}s")

    def _detail(self, step: str) -> str:
        meta = self.meta.get(step, {})
        if step.startswith(("raw_", "shop_", "sheets_")):
            return (
                f"{self.tables[step]} table(s), {self.loaded[step]:,} rows loaded, "
                f"{self.quarantined[step]:,} quarantined"
            )
        if step == "dbt_build":
            tests = sum(n for (s, _), n in self.checks.items() if s == step)
            built = f"{self.tables[step]} models, {tests} tests"
            return built + (f", {meta['persons']:,} persons" if "persons" in meta else "")
        if step == "privacy__erased_identifiers":
            return f"{meta.get('persons_erased', 0)} person(s) erased"
        if step == "privacy__access_exports":
            return f"{meta.get('exports_written', 0)} written"
        return ""

    @staticmethod
    def _line(stage: str, text: str) -> None:
        print(f"  {stage:<9} {text}", file=CONSOLE, flush=True)


@dg.logger(description="One console line per finished stage of the run.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("cdp_progress", level=logging.DEBUG)
    logger.addHandler(_Progress())
    return logger


def failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """Each failed step with the first line of its error: source, object and fix."""
    found = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.event_specific_data
        message = (
            (data.user_failure_data and data.user_failure_data.description)
            or expected_failure(data.error)
            or (data.error and (data.error.cause or data.error).message)
        )
        found.append((event.step_key, (message or "see the log").strip()))
    return found


def summary(results: list[dg.ExecuteInProcessResult], warehouse: Path, marts: Path) -> list[str]:
    """The closing lines: checks, quarantine and erasure of these runs (the extraction and
    the build of one `cdp run`), and what was published."""
    checks: Counter = Counter()
    erased = 0
    published: dict = {}
    for event in (e for result in results for e in result.all_events):
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            checks["passed" if check.passed else check.severity.value.lower()] += 1
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            meta = {k: v.value for k, v in materialization.metadata.items()}
            erased += meta.get("persons_erased", 0) or 0
            if materialization.asset_key == dg.AssetKey(["published", "marts"]):
                published = meta.get("tables") or {}
    lines = [
        f"  checks      {checks['passed']} passed, {checks['error']} failed, "
        f"{checks['warn']} warnings"
    ]
    if warehouse.exists():
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                by_rule = con.execute(
                    "select table_name || ' ' || rule, count(*) from quarantine.rejected_rows "
                    "where list_contains(?, run_id) group by 1 order by 2 desc",
                    [[result.run_id for result in results]],
                ).fetchall()
        except duckdb.Error:
            by_rule = []
        quarantined = ", ".join(f"{what}: {n:,}" for what, n in by_rule) or "none"
        lines.append(f"  quarantined {quarantined}")
    lines.append(f"  erased      {erased} person(s)")
    if published:
        lines.append("  published   " + ", ".join(f"{t} {n:,}" for t, n in published.items()))
        lines.append(f"              {_visitors(marts)}")
    return lines


def _visitors(marts: Path) -> str:
    """Why there are more profiles than customers: devices never tied to a person we know."""
    with duckdb.connect(str(marts), read_only=True) as con:
        persons, device_only = con.execute(
            "select count(*), count(*) filter (where only_devices) from ("
            "select bool_and(identifier_type = 'device') as only_devices "
            "from customer_identities group by customer_key)"
        ).fetchone()
    return (
        f"profiles: {persons - device_only:,} known by account, email or phone, "
        f"{device_only:,} web/app visitors known only by a device"
    )
