"""The poller's worker processes: started, replaced when they die, recycled when the function
changes, and every one reaped on stop.

As Lambda does with execution environments:
- a worker that dies after start-up (killed, out of memory, a crash in a native library) is replaced
  at once; the batch it held comes back after the visibility timeout;
- a worker that dies before it is ready is retried with a growing delay, and after a few attempts in
  a row the poller gives up with the reason (:attr:`Poller.failure`), as Lambda reports a function
  that cannot initialise instead of restarting it four times a second forever;
- when the deployed function's configuration changes (``watch``, read every few seconds), new
  workers start with it and the old ones stop after the batch in hand.

Workers are plain child processes (``python -m imgproc.worker``) reporting on a pipe: no
multiprocessing semaphores to leak, no resource-tracker process outliving ``imgproc up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from imgproc import poller, signals, worker

SUPERVISE_INTERVAL = 0.25  # seconds between checks for dead workers
WATCH_INTERVAL = 2.0  # seconds between reads of the function's configuration


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a worker again after ``failures`` start-ups in a row failed,
    and when to give up."""

    first_delay: float = 1.0
    max_delay: float = 8.0
    give_up_after: int = 5

    def delay(self, failures: int) -> float | None:
        """Seconds before the next attempt; None: give up."""
        if failures >= self.give_up_after:
            return None
        return min(self.max_delay, self.first_delay * 2 ** (failures - 1)) if failures else 0.0


def describe_change(old: poller.Mapping, new: poller.Mapping) -> list[str]:
    """What differs between two deployed configurations, one ``NAME: old -> new`` per item."""
    changes = []
    before, after = old.function.environment, new.function.environment
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            changes.append(f"{name}: {before.get(name, '(unset)')} -> {after.get(name, '(unset)')}")
    for label, a, b in (
        ("timeout", old.function.timeout_seconds, new.function.timeout_seconds),
        ("memory", old.function.memory_mb, new.function.memory_mb),
        ("batch size", old.batch_size, new.batch_size),
        ("batching window", old.window_seconds, new.window_seconds),
        ("queue", old.queue_url, new.queue_url),
    ):
        if a != b:
            changes.append(f"{label}: {a} -> {b}")
    return changes


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    reports: IO[bytes]
    ready: bool = False
    error: str | None = None
    pending: bytes = b""


@dataclass
class _Slot:
    current: _Worker | None = None
    failures: int = 0  # start-ups in a row that failed
    restart_at: float = 0.0
    last_error: str = ""


@dataclass
class _Outbox:
    """What the supervising thread has for the caller: batch reports and notices (lines to show)."""

    reports: list[poller.BatchReport] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


class Poller:
    """``workers`` worker processes polling for ``mapping``'s function; see the module doc.

    ``watch()`` returns the function's current deployed mapping (None: do not watch).
    """

    def __init__(
        self,
        mapping: poller.Mapping,
        options: poller.WorkerOptions,
        workers: int = 2,
        *,
        watch: Callable[[], poller.Mapping] | None = None,
        policy: RestartPolicy | None = None,
    ) -> None:
        self._mapping, self._options = mapping, options
        self._watch, self._policy = watch, policy or RestartPolicy()
        self._slots = [_Slot() for _ in range(workers)]
        self._retiring: list[_Worker] = []
        self._lock = threading.RLock()  # the supervisor reads reports while it holds it
        self._outbox = _Outbox()
        self._stopping = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._supervisor = threading.Thread(target=self._supervise, name="poller-supervisor", daemon=True)
        self.failure: str | None = None  # set when the poller gave up: why

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [slot.current.process.pid for slot in self._slots if slot.current]

    def start(self) -> None:
        with self._lock:
            for index, slot in enumerate(self._slots):
                slot.current = self._spawn(index)
        signals.start_helper_thread(self._supervisor)

    def drain_stats(self) -> list[poller.BatchReport]:
        """The batch reports received since the last call."""
        with self._lock:
            reports, self._outbox.reports = self._outbox.reports, []
        return reports

    def drain_notices(self) -> list[str]:
        """Lines for the operator (restarts, start-up failures, configuration changes) since the last call."""
        with self._lock:
            notices, self._outbox.notices = self._outbox.notices, []
        return notices

    def stop(self, timeout: float = 120.0) -> None:
        """Ask every worker to stop after its batch in hand, wait for each, kill those that do not."""
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        with self._lock:
            everyone = [s.current for s in self._slots if s.current] + self._retiring
        for w in everyone:
            _signal(w, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            for w in everyone:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.process.wait(max(0.1, deadline - time.monotonic()))
        finally:  # a second Ctrl-C while waiting: stop waiting, still leave nothing behind
            for w in everyone:
                if w.process.poll() is None:
                    w.process.kill()
                w.process.wait()
                self._read(w, final=True)
            self._selector.close()

    # --- the supervising thread -------------------------------------------------------------------

    def _spawn(self, index: int) -> _Worker:
        read_fd, write_fd = os.pipe()
        command = [
            sys.executable,
            "-m",
            "imgproc.worker",
            str(write_fd),
            worker.encode_spec(index, self._mapping, self._options),
        ]
        log_dir = self._options.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            with signals.blocked(), open(log_dir / f"worker-{index}.stderr.log", "ab") as stderr:
                process = subprocess.Popen(
                    command, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
                )
        finally:
            os.close(write_fd)
        reports = os.fdopen(read_fd, "rb", buffering=0)
        os.set_blocking(read_fd, False)
        w = _Worker(index, process, reports)
        self._selector.register(reports, selectors.EVENT_READ, w)
        return w

    def _supervise(self) -> None:
        next_watch = time.monotonic() + WATCH_INTERVAL
        while not self._stopping.is_set():
            for key, _ in self._selector.select(SUPERVISE_INTERVAL):
                self._read(key.data)
            if self._stopping.is_set():
                return
            with self._lock:
                self._check_workers()
            if self._watch is not None and time.monotonic() >= next_watch:
                self._check_configuration()
                next_watch = time.monotonic() + WATCH_INTERVAL

    def _read(self, w: _Worker, final: bool = False) -> None:
        """Take the complete lines ``w`` wrote (all of them when ``final``)."""
        while True:
            try:
                chunk = w.reports.read(65536)
            except (BlockingIOError, ValueError):  # nothing yet; or already closed
                chunk = None
            if chunk is None:
                break
            if not chunk:  # end of file: the worker is gone, its exit is seen next
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(w.reports)
                break
            w.pending += chunk
        *lines, w.pending = w.pending.split(b"\n")
        for line in lines:
            self._take(w, line)
        if final:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(w.reports)
            w.reports.close()

    def _take(self, w: _Worker, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        kind = message.pop("type", None)
        with self._lock:
            if kind == "ready":
                w.ready = True
                self._slots[w.index].failures = 0
            elif kind == "error":
                w.error = message.get("error")
            elif kind == "batch":
                self._outbox.reports.append(poller.BatchReport(**message))

    def _check_workers(self) -> None:
        now = time.monotonic()
        for w in [w for w in self._retiring if w.process.poll() is not None]:
            self._read(w, final=True)
            self._retiring.remove(w)
        for index, slot in enumerate(self._slots):
            w = slot.current
            if w is None:
                if self.failure is None and now >= slot.restart_at:
                    slot.current = self._spawn(index)
                continue
            code = w.process.poll()
            if code is None:
                continue
            self._read(w, final=True)
            slot.current = None
            how = _how(code, w.error)
            if w.ready:
                slot.current = self._spawn(index)
                self._outbox.notices.append(
                    f"worker {index} {how}; started a new one (the batch it held comes back after the "
                    "queue's visibility timeout)"
                )
                continue
            slot.failures += 1
            slot.last_error = how
            delay = self._policy.delay(slot.failures)
            if delay is None:
                self.failure = (
                    f"worker {index} could not start ({slot.failures} attempts in a row): it {how} "
                    f"(see {self._options.log_dir}/worker-{index}.stderr.log)"
                )
                self._stopping.set()
                return
            slot.restart_at = now + delay
            self._outbox.notices.append(
                f"worker {index} could not start: it {how}; trying again in {delay:g} s"
            )

    def _check_configuration(self) -> None:
        try:
            current = self._watch() if self._watch else self._mapping
        except Exception as exc:
            with self._lock:
                self._outbox.notices.append(f"could not read the function's configuration: {exc}")
            return
        changes = describe_change(self._mapping, current)
        if not changes:
            return
        with self._lock:
            self._mapping = current
            for index, slot in enumerate(self._slots):
                if slot.current is not None:
                    _signal(slot.current, signal.SIGTERM)  # it stops after the batch in hand
                    self._retiring.append(slot.current)
                slot.current, slot.failures = self._spawn(index), 0
            self._outbox.notices.append(
                f"function configuration changed ({'; '.join(changes)}): new workers start with it, the "
                "old ones stop after their batch in hand"
            )


def _how(code: int, error: str | None) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}" + (f" ({error})" if error else "")


def _signal(w: _Worker, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        w.process.send_signal(signum)
