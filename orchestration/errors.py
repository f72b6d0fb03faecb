"""Source errors: transient ones are retried with backoff, terminal ones fail at once."""

from __future__ import annotations

import contextlib
import logging

import dagster as dg
import tenacity

log = logging.getLogger("cdp")


class SourceError(Exception):
    """A terminal problem with a source: the message names the source, the object and the fix."""

    def __init__(self, source: str, obj: str, problem: str, fix: str):
        super().__init__(f"[{source}] {obj}: {problem}. Fix: {fix}")
        self.source, self.obj = source, obj


class TransientSourceError(Exception):
    """A failure worth retrying (connection reset, HTTP 429 or 5xx)."""


def retry_transient(attempts: int = 5, max_wait: float = 20.0):
    """Bounded exponential backoff with full jitter for `TransientSourceError`."""
    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(TransientSourceError),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=max_wait),
        stop=tenacity.stop_after_attempt(attempts),
        before_sleep=lambda state: log.warning(
            "transient source error, retry %d/%d: %s",
            state.attempt_number,
            attempts,
            state.outcome.exception(),
        ),
        reraise=True,
    )


# Step-level retries for extract assets, on top of the per-request retries above: a source
# that is down for a minute should not fail the night.
EXTRACT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextlib.contextmanager
def fail_at_once_on_terminal_errors():
    """A terminal source error fails the step without the retries above: retrying a wrong
    password or a missing tab only delays the message."""
    try:
        yield
    except SourceError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
