"""The one retry policy of the project's HTTP clients (the CRM, Telegram), on tenacity.

A request is tried up to ``attempts`` times in all. Retried: a connection error or timeout and a
5xx answer (exponential backoff from ``backoff_s``, capped at ``max_wait_s``), and a 429 (after
the wait the server asks for, capped at ``max_retry_after_s``). Anything else is the caller's
answer at once: a 4xx will not get better by asking again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import requests
import tenacity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5
    max_wait_s: float = 30.0
    max_retry_after_s: float = 300.0


class Retryable(Exception):
    """One attempt failed in a way worth another; ``wait_s`` is the server's own wait (429)."""

    def __init__(self, problem: str, wait_s: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.wait_s = wait_s


class GaveUp(Exception):
    """Every attempt failed; ``problem`` is the last one's, ``attempts`` how many were made."""

    def __init__(self, problem: str, attempts: int) -> None:
        super().__init__(f"{problem} after {attempts} attempts")
        self.problem = problem
        self.attempts = attempts


def classify(
    send: Callable[[], requests.Response],
    retry_after: Callable[[requests.Response], float | None],
) -> requests.Response:
    """One attempt: the response, or ``Retryable`` for an unreachable server, a 5xx or a 429."""
    try:
        response = send()
    except requests.RequestException as exc:
        raise Retryable(f"unreachable ({type(exc).__name__})") from None
    if response.status_code == 429:
        raise Retryable("rate limited (429)", retry_after(response))
    if response.status_code >= 500:
        raise Retryable(f"HTTP {response.status_code}")
    return response


def request(
    send: Callable[[], requests.Response],
    where: str,
    policy: RetryPolicy = RetryPolicy(),
    retry_after: Callable[[requests.Response], float | None] = lambda r: None,
    sleep: Callable[[float], None] | None = None,
) -> requests.Response:
    """``send()`` under the policy; the first answer that is not retryable is returned (the
    caller checks its status), ``GaveUp`` when every attempt was retryable."""

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, Retryable) and failure.wait_s is not None:
            return min(max(failure.wait_s, 0.0), policy.max_retry_after_s)
        return min(policy.backoff_s * 2 ** (state.attempt_number - 1), policy.max_wait_s)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s (attempt %d of %d), retrying in %.1f s",
            where,
            failure,
            state.attempt_number,
            policy.attempts,
            delay,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(Retryable),
        before_sleep=before_sleep,
        sleep=sleep or tenacity.nap.sleep,
        reraise=True,
    )
    try:
        return retrying(classify, send, retry_after)
    except Retryable as last:
        raise GaveUp(last.problem, policy.attempts) from None
