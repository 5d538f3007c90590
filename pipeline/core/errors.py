"""Errors every flow shares."""

from __future__ import annotations


class ServerUnavailable(RuntimeError):
    """A server a flow needs does not answer (connection refused, reset, timed out).

    Not the data's fault: a run stops early with a clear message and a non-zero exit, spends no
    file's attempts, and the next run finishes the work once the server is back."""
