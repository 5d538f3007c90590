"""Named crash points for the fault-injection tests: a process SIGKILLs itself at a named point.

``crash_point("load.after_commit")`` does nothing unless the environment variable
``PIPELINE_CRASH_AT`` names that point (a comma-separated list may name several; ``name@N`` kills
at the N-th time the point is reached in this process, or in this task where a warm worker
process runs several: ``pipeline.core.runners`` resets the counts before each). The tests run a
real child process with it set, let it die at that exact place, then rerun and check the exact
result: a raised exception takes the error-handling path, only a kill proves what survives a
crash.

Production never sets the variable; reading it is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "PIPELINE_CRASH_AT"
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here, now, with SIGKILL, if the environment asks for it."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    _reached[name] = _reached.get(name, 0) + 1
    for item in wanted.split(","):
        point, _, nth = item.strip().partition("@")
        if point == name and (not nth or int(nth) == _reached[name]):
            os.kill(os.getpid(), signal.SIGKILL)


def reset_counts() -> None:
    """Count each point from zero again (a warm worker process starting its next task)."""
    _reached.clear()
