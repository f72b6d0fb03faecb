"""Source errors: transient ones are retried with backoff, terminal ones fail at once.

Every call to a source runs against a deadline (`CDP_SOURCE_TIMEOUT_SECONDS`) that covers its
retries and their waits too, so a source that never answers costs minutes, not the night.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from orchestration.settings import load_settings

T = TypeVar("T")

# A server's Retry-After is honoured up to this; a longer wait is better spent by a later run.
MAX_RETRY_AFTER_SECONDS = 60.0


class SourceError(Exception):
    """A terminal problem with a source: the message names the source, the object and the fix."""

    def __init__(self, source: str, obj: str, problem: str, fix: str):
        super().__init__(f"[{source}] {obj}: {problem}. Fix: {fix}")
        self.source, self.obj, self.problem, self.fix = source, obj, problem, fix


class SourceUnavailableError(SourceError):
    """The source kept failing transiently until the retries ran out. Unlike other terminal
    errors, the step's own retries may still help: a source down for a minute comes back."""


class TransientSourceError(Exception):
    """A failure worth retrying (connection reset, timeout, HTTP 429 or 5xx). It carries the
    fix to print should the retries run out, and the wait the server asked for, if any."""

    def __init__(
        self, source: str, obj: str, problem: str, fix: str, retry_after: float | None = None
    ):
        super().__init__(f"[{source}] {obj}: {problem}")
        self.source, self.obj, self.problem, self.fix = source, obj, problem, fix
        self.retry_after = retry_after

    def gave_up(self, why: str, *, retry_later: bool = True) -> SourceError:
        kind = SourceUnavailableError if retry_later else SourceError
        return kind(self.source, self.obj, f"{self.problem} ({why})", self.fix)


def source_timeout() -> float:
    return load_settings().source_timeout_seconds


class Deadline:
    """The time one call to a source may take, all its retries and waits included."""

    def __init__(self, seconds: float | None = None):
        self.seconds = source_timeout() if seconds is None else seconds
        self._end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def exceeded(self, source: str, obj: str, fix: str) -> SourceError:
        return SourceError(
            source,
            obj,
            f"no complete answer within {self.seconds:g}s (CDP_SOURCE_TIMEOUT_SECONDS)",
            f"{fix}, or raise CDP_SOURCE_TIMEOUT_SECONDS if the source is just slow",
        )


def retry_transient(
    attempts: int = 5,
    max_wait: float = 20.0,
    deadline: Deadline | None = None,
    log: logging.Logger | dg.DagsterLogManager | None = None,
):
    """Retry `TransientSourceError` after the server's Retry-After (up to a minute), else with
    capped exponential backoff and full jitter; each retry is logged as it happens, in the
    Dagster event log when run in a step. Without a `deadline`, each call gets a fresh one."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def call(*args, **kwargs) -> T:
            limit = deadline or Deadline()
            logger = log or dg.get_dagster_logger("cdp")
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except TransientSourceError as exc:
                    if attempt == attempts:
                        raise exc.gave_up(f"failed {attempts} times") from exc
                    if exc.retry_after is not None:
                        wait = min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
                        asked = " (the server's Retry-After)"
                        if exc.retry_after > wait:
                            asked = f" (the server's Retry-After of {exc.retry_after:g}s, capped)"
                    else:
                        wait = random.uniform(0, min(max_wait, 0.5 * 2**attempt))
                        asked = ""
                    if wait >= limit.remaining():  # the time is spent: no step retry either
                        raise exc.gave_up(
                            f"failed {attempt} time(s); waiting {wait:.1f}s more would pass "
                            f"the {limit.seconds:g}s deadline (CDP_SOURCE_TIMEOUT_SECONDS)",
                            retry_later=False,
                        ) from exc
                    logger.warning(
                        f"{exc} (attempt {attempt} of {attempts}); retrying in {wait:.1f}s{asked}"
                    )
                    time.sleep(wait)
            raise AssertionError("unreachable")

        return call

    return decorate


def within_deadline(fn: Callable[[], T], deadline: Deadline, on_timeout: SourceError) -> T:
    """Run `fn` in a daemon thread and stop waiting for it at the deadline, for client
    libraries (fsspec backends) that take no overall time limit of their own."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name="cdp-source-call")
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise on_timeout
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


# Step-level retries for extract assets, on top of the per-request retries above: a source
# that is down for a minute should not fail the night.
EXTRACT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextlib.contextmanager
def fail_at_once_on_terminal_errors():
    """A terminal source error fails the step without the retries above: retrying a wrong
    password or a missing tab only delays the message. A source still unavailable after its
    per-request retries is left to them, with the same one-line message."""
    try:
        yield
    except SourceUnavailableError as exc:
        raise dg.Failure(description=str(exc), allow_retries=True) from exc
    except SourceError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except TransientSourceError as exc:  # raised outside any retry loop
        raise dg.Failure(description=f"{exc}. Fix: {exc.fix}", allow_retries=True) from exc
