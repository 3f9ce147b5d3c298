"""Transient API errors, retried with backoff and jitter within a budget.

An API call that times out, is reset, or answers 429 or 500/502/503/504 may well work a
moment later; one that answers 400, 403, 404, 409 or 422 will not.  The adapters tell
the two apart (``Transient`` for the first kind) and run each call through ``retrying``:
a transient failure is tried again after an exponential backoff with jitter (at least
the server's ``Retry-After``), as long as the ``Budget`` of waiting lasts: the time the API
may keep failing in a row, over all the calls of one client, reset by any success.  When
it runs out, ``TransientError`` ends the step and the task's own retries take over (a
trigger goes on with one attempt per call until the API answers again).

The waiting and stopping rules are tenacity's (a well-kept retry library that Airflow
itself depends on); only the budget is ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from ..release.model import Log, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# HTTP statuses worth another try: too many requests, and the server-side failures that
# say nothing about the request itself.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class Transient(Exception):
    """One failed attempt that may pass; ``retry_after``: what the server asked us to wait."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Budget:
    """How long a client may spend waiting for an API that keeps failing (reset by a success)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.spent = 0.0

    @property
    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)


def retry_after(value) -> float | None:
    """A ``Retry-After`` header in seconds (the HTTP-date form is read as 'a moment')."""
    if value in (None, ""):
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


def raise_if_transient(status: int, message: str, headers=None) -> None:
    """``Transient`` (with the server's ``Retry-After``) when an HTTP status is worth another try."""
    if status in TRANSIENT_STATUSES:
        raise Transient(message, retry_after((headers or {}).get("Retry-After")))


_backoff = tenacity.wait_exponential_jitter(initial=0.25, max=8.0, jitter=0.5)


def retrying(
    call: Callable[[], T],
    budget: Budget,
    what: str,
    logger: Log = log,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on ``Transient``, wait and try again within ``budget``; then TransientError."""

    def wait(state: tenacity.RetryCallState) -> float:
        asked = getattr(_error(state), "retry_after", None) or 0.0
        return min(max(_backoff(state), asked), budget.left)

    def stop(state: tenacity.RetryCallState) -> bool:
        return budget.left <= 0

    def before_sleep(state: tenacity.RetryCallState) -> None:
        pause = state.next_action.sleep if state.next_action else 0.0
        budget.spent += pause
        logger.warning(
            "%s: %s; trying again in %.1fs (%.0fs of the step's retry budget left)",
            what,
            _error(state),
            pause,
            budget.left,
        )

    retryer = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Transient),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        result = retryer(call)
    except Transient as e:
        raise TransientError(
            f"{what}: {e} (still failing after {budget.seconds:g}s of retries; the task will be retried)"
        ) from None
    budget.spent = 0.0  # the API answered: the budget bounds failures in a row, not a step's calls
    return result


def _error(state: tenacity.RetryCallState) -> BaseException | None:
    """The exception of the attempt that just failed (tenacity calls wait and before_sleep only then)."""
    return state.outcome.exception() if state.outcome else None
