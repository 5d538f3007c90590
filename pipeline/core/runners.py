"""Warm task processes: a Luigi worker's tasks run in processes kept for the next task.

Luigi runs each task in a process forked for it whenever the worker has ``--workers 2`` or more,
or the task has a ``worker_timeout`` (the flows' period tasks have one). A fork of a worker that
has imported pandas and pyarrow, its copy-on-write faults and its exit cost ~20 ms of CPU, and
each new process logs in to PostgreSQL again (SCRAM) and makes sure of its tables again: a
year's sales backfill (~160 tasks) spent about a third of its CPU there.

Here each worker keeps as many runner processes as it has ``--workers``, forked from it, and
hands each task to an idle one (the task pickled over the runner's pipe). The runner runs it
exactly as Luigi's own task process does (``TaskProcess.run``: the dependency checks, the events,
the result), sends the result back over its own pipe with the news that it is free, and waits
for the next task. For Luigi's worker nothing else changes:

- a runner that dies during a task (a crash, SIGKILL) is that task's ``PROCESS_FAILURE``, and
  the next task gets a fresh runner;
- a task over its ``worker_timeout`` has its runner terminated with its children (SIGTERM, then
  SIGKILL after 5 s);
- a runner is replaced after ``PIPELINE_TASKS_PER_PROCESS`` tasks (100; 1 turns this off: a
  fresh process per task, Luigi's way) or once it is larger than
  ``PIPELINE_TASK_PROCESS_MAX_MB`` (1024) after a task;
- runners end with their worker: told to at ``Worker.__exit__``, and killed by the kernel when
  the worker's process dies (Linux's parent-death signal), so a killed ``luigi`` command leaves
  no task running on without its timeout.

A task that takes scheduler messages (``accepts_messages``) or cannot be pickled runs in a
process of its own as before. Before each task a runner replaces the log context with the task's
and resets the crash points' counts (``point@N`` counts within one task, as in a fork); the
database sessions and the "table made" caches are kept on purpose. Luigi's task instance cache is
the worker's as it was when the runner was forked, plus what the runner's tasks made.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue as queue_module
import signal
import time
from multiprocessing.reduction import ForkingPickler
from typing import Any

import luigi.worker
from luigi.scheduler import FAILED

from config.settings import load_settings

log = logging.getLogger(__name__)

_FORK = multiprocessing.get_context("fork")
_STOP = b"stop"
_DONE = b"done"  # the task is done; its result, pickled, follows in the same message
_LAST = b"last"  # the same, and the runner ends now (replaced: its tasks or its size)
_SEP = b"\0"  # a task's message: its id, then the pickled task
# How long the worker waits for a busy runner to send its result and so be free again, before it
# forks another runner instead.
_FREE_WAIT_S = 1.0
# Seconds a terminated runner has to end before it is killed.
_TERM_GRACE_S = 5.0


def resident_mb() -> float:
    """This process's resident memory, in MB."""
    with open("/proc/self/statm", "rb") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # PR_SET_PDEATHSIG
            log.warning("task runner: no parent-death signal (errno %d)", ctypes.get_errno())
    except Exception as exc:  # not Linux
        log.warning("task runner: no parent-death signal (%s)", type(exc).__name__)
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)


class _Captured:
    """Where Luigi's task process puts its result inside a runner: the result then travels with
    the runner's DONE on its own pipe, so a runner killed at any moment can only break that pipe
    (a process killed while writing to a queue shared by many leaves it locked, or half a
    message in it, and the worker waiting for ever)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def put(self, item: Any) -> None:
        self.items.append(item)


class _ResultQueue:
    """The worker's result queue as Luigi uses it (``get``, ``put``, ``close``): the results
    its runners sent over their pipes first, then the queue's own (Luigi's task processes for
    the tasks that run in a fork of their own). ``put`` from the worker's process (its dead or
    timed-out tasks) goes straight to the results; from a forked task process, to the queue."""

    def __init__(self, queue: Any, pool: RunnerPool) -> None:
        self._queue = queue
        self._pool = pool

    def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
        if os.getpid() == self._pool.owner:
            self._pool.results.append(item)
        else:
            self._queue.put(item, *args, **kwargs)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pool.reap()
            if self._pool.results:
                return self._pool.results.popleft()
            with contextlib.suppress(queue_module.Empty):
                return self._queue.get(block=False)
            left = None if deadline is None else deadline - time.monotonic()
            if not block or (left is not None and left <= 0):
                raise queue_module.Empty
            # Woken at once by a runner; a forked task's result is seen within 20 ms.
            self._pool.wait(0.02 if left is None else min(left, 0.02))

    def close(self) -> None:
        self._queue.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


class TaskRunner(_FORK.Process):  # type: ignore[name-defined]  # the fork context's Process
    """A process forked from a Luigi worker that runs the tasks it is sent, one at a time."""

    def __init__(self, pool: RunnerPool, tasks_limit: int, max_mb: int) -> None:
        super().__init__(name="luigi-task-runner")
        self._pool = pool
        self._tasks_limit = tasks_limit
        self._max_mb = max_mb
        self.conn, self._runner_end = _FORK.Pipe()
        self.current: WarmTaskProcess | None = None
        self.retiring = False

    # -- in the runner process ----------------------------------------------------------------
    def run(self) -> None:
        _die_with_parent(self._pool.owner)
        # The worker's ends of every pipe: this runner must see its own pipe end when the worker
        # dies, and must not keep the other runners' pipes open.
        for runner in self._pool.runners:
            runner.conn.close()
        self.conn.close()
        conn = self._runner_end
        count = 0
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the worker is gone
            if message == _STOP:
                return
            task_id, _, payload = message.partition(_SEP)
            result = self._run_one(task_id.decode(), payload)
            count += 1
            last = count >= self._tasks_limit or resident_mb() > self._max_mb
            try:
                conn.send_bytes((_LAST if last else _DONE) + result)
            except OSError:
                return  # the worker is gone
            if last:
                return

    def _run_one(self, task_id: str, payload: bytes) -> bytes:
        """Run one task; its result for the worker's queue, pickled."""
        from monitoring.logs import bind
        from pipeline.core import faults

        bind(task_id=task_id)  # not the previous task's, before Luigi's START binds the rest
        faults.reset_counts()
        captured = _Captured()
        try:
            task = pickle.loads(payload)
            # Luigi's own task process, run here instead of in a fork: the same dependency
            # checks, events and result.
            process = _original_create(self._pool.worker, task)
            process.result_queue = captured
            process.run()
        except Exception as exc:  # not the task's own failure (Luigi reports those)
            log.exception("task runner %d could not run %s", os.getpid(), task_id)
            if not captured.items:
                captured.put((task_id, FAILED, f"the task runner failed: {exc!r}", [], []))
        if not captured.items:
            captured.put((task_id, FAILED, "the task runner got no result from the task", [], []))
        try:
            return bytes(ForkingPickler.dumps(captured.items[-1]))
        except Exception as exc:
            why = f"the task's result could not be pickled: {exc!r}"
            return bytes(ForkingPickler.dumps((task_id, FAILED, why, [], [])))

    # -- in the worker ------------------------------------------------------------------------
    def poll(self) -> None:
        """Take the runner's news: its task done."""
        with contextlib.suppress(EOFError, OSError):
            while self.current is not None and self.conn.poll():
                news = self.conn.recv_bytes()
                kind, result = news[: len(_DONE)], news[len(_DONE) :]
                if kind in (_DONE, _LAST):
                    self._pool.results.append(pickle.loads(result))
                    self.current.finished = True
                    self.current = None
                    self.retiring = kind == _LAST

    def end(self) -> None:
        """Terminate the runner and whatever it started (as Luigi terminates its task
        processes), killed if it is still there after a grace period."""
        try:
            import psutil

            children = psutil.Process(self.pid).children(recursive=True)
        except Exception:
            children = []
        with contextlib.suppress(Exception):
            self.terminate()
            self.join(_TERM_GRACE_S)
            if self.is_alive():
                self.kill()
                self.join(_TERM_GRACE_S)
        for child in children:
            with contextlib.suppress(Exception):
                child.terminate()


class RunnerPool:
    """One worker's runners."""

    def __init__(self, worker: luigi.worker.Worker) -> None:
        self.worker = worker
        self.owner = os.getpid()
        self.runners: list[TaskRunner] = []
        self.results: collections.deque[Any] = collections.deque()  # for the worker's get()
        flows = load_settings().flows
        self.tasks_limit = flows.tasks_per_process
        self.max_mb = flows.task_process_max_mb

    def reap(self) -> None:
        """Take every runner's news; forget the runners that have ended."""
        for runner in list(self.runners):
            alive = runner.is_alive()  # first: news it sent before it ended is read below
            runner.poll()
            if not alive:
                if runner.current is not None:
                    # Ended during its task (0 would mean it ended without it: a failure too).
                    runner.current.runner_exitcode = runner.exitcode or 1
                    runner.current = None
                self.runners.remove(runner)
                runner.conn.close()
                runner.join(0)

    def take(self) -> TaskRunner:
        """An idle runner; a new one when every runner is busy and the worker may run more."""
        waited_until = time.monotonic() + _FREE_WAIT_S
        while True:
            self.reap()
            idle = [r for r in self.runners if r.current is None and not r.retiring]
            if idle:
                return idle[0]
            working = [r for r in self.runners if not r.retiring]
            if len(working) < self.worker.worker_processes or time.monotonic() > waited_until:
                runner = TaskRunner(self, self.tasks_limit, self.max_mb)
                runner.start()
                runner._runner_end.close()
                self.runners.append(runner)
                return runner
            self.wait(0.05)

    def wait(self, timeout: float) -> None:
        """Until a runner has news or ends, at most ``timeout`` seconds."""
        handles = [r.conn for r in self.runners] + [r.sentinel for r in self.runners]
        if handles:
            multiprocessing.connection.wait(handles, timeout=timeout)
        else:
            time.sleep(timeout)

    def stop(self) -> None:
        """End every runner: idle ones are told to stop, busy ones are terminated."""
        if os.getpid() != self.owner:
            return
        self.reap()
        for runner in self.runners:
            if runner.current is None:
                with contextlib.suppress(OSError):
                    runner.conn.send_bytes(_STOP)
            else:
                runner.end()
        for runner in self.runners:
            runner.join(_TERM_GRACE_S)
            if runner.is_alive():
                runner.end()
            runner.conn.close()
        self.runners.clear()


class WarmTaskProcess:
    """What Luigi's worker holds for a running task (as it holds a ``TaskProcess``), the task
    running in one of the worker's runners."""

    use_multiprocessing = True

    def __init__(self, pool: RunnerPool, process: luigi.worker.TaskProcess, payload: bytes):
        self.pool = pool
        self.task = process.task
        self.status_reporter = process.status_reporter
        self.worker_timeout = process.worker_timeout
        self.timeout_time = process.timeout_time
        self.message = process.task.task_id.encode() + _SEP + payload
        self.runner: TaskRunner | None = None
        self.finished = False
        self.runner_exitcode: int | None = None

    def start(self) -> None:
        # A runner that ended between its last task and this one (its pipe is closed): the task
        # never started there, so it goes to another.
        for _ in range(3):
            runner = self.pool.take()
            try:
                runner.conn.send_bytes(self.message)
            except OSError:
                runner.retiring = True
                continue
            runner.current = self
            self.runner = runner
            return
        self.runner_exitcode = 1  # reported by Luigi as a process that died

    @property
    def pid(self) -> int | None:
        return self.runner.pid if self.runner else None

    def is_alive(self) -> bool:
        self.pool.reap()
        return not self.finished and self.runner_exitcode is None

    @property
    def exitcode(self) -> int | None:
        if self.finished:
            return 0
        return self.runner_exitcode

    def terminate(self) -> None:
        if self.runner is not None and self.runner.current is self:
            self.runner.end()
            self.pool.reap()


_original_create = luigi.worker.Worker._create_task_process


def _pool(worker: luigi.worker.Worker) -> RunnerPool:
    pool = getattr(worker, "_warm_runners", None)
    if pool is None or pool.owner != os.getpid():
        pool = RunnerPool(worker)
        worker._warm_runners = pool  # type: ignore[attr-defined]
        queue = worker._task_result_queue
        if isinstance(queue, _ResultQueue):
            queue = queue._queue
        worker._task_result_queue = _ResultQueue(queue, pool)
        _pools.append(pool)
    return pool


_pools: list[RunnerPool] = []


def _create_task_process(self: luigi.worker.Worker, task: luigi.Task) -> Any:
    process = _original_create(self, task)
    if not process.use_multiprocessing or task.accepts_messages:
        return process  # run in the worker's own process, or needs Luigi's message queue
    if load_settings().flows.tasks_per_process <= 1:
        return process
    try:
        payload = pickle.dumps(task)
    except Exception as exc:
        log.debug("%s cannot be pickled (%s): a process of its own", task, type(exc).__name__)
        return process
    return WarmTaskProcess(_pool(self), process, payload)


def _stop_all() -> None:
    for pool in _pools:
        with contextlib.suppress(Exception):
            pool.stop()
    _pools.clear()


def install() -> None:
    """Make every Luigi worker of this process run its tasks in warm runners (once)."""
    if getattr(install, "done", False):
        return
    original_exit = luigi.worker.Worker.__exit__

    @functools.wraps(original_exit)
    def __exit__(self: luigi.worker.Worker, *exc_info: Any) -> Any:
        try:
            return original_exit(self, *exc_info)
        finally:
            pool = getattr(self, "_warm_runners", None)
            if pool is not None:
                pool.stop()
                with contextlib.suppress(ValueError):
                    _pools.remove(pool)

    luigi.worker.Worker._create_task_process = _create_task_process  # type: ignore[method-assign]
    luigi.worker.Worker.__exit__ = __exit__  # type: ignore[method-assign]
    # A worker left without its __exit__ (a test that drops it): its runners would keep the
    # interpreter's exit waiting (multiprocessing joins its children then).
    atexit.register(_stop_all)
    install.done = True  # type: ignore[attr-defined]
