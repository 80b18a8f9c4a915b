"""Supervised threads: a loop that raises is logged, reported at once and restarted after a backoff.

The node's long-lived loops (the transport's receive loop, the inference worker, the diagnostics monitor) run
under one :class:`Supervisor`. Every sample is already decoded and handled inside its own error boundary, so a
loop should never raise; if one does anyway, the supervisor records the death (name, reason, time), calls
``on_death`` (the node publishes ERROR diagnostics from that thread, before it restarts) and runs the loop
again, waiting ``backoff_s`` after the first death and doubling up to ``max_backoff_s`` while deaths repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOG = logging.getLogger("interactvlm.node")


@dataclass(frozen=True)
class ThreadDeath:
    """One loop that raised: thread name, ``"ExcType: message"`` and the monotonic time it happened."""

    name: str
    reason: str
    time: float


class Supervisor:
    """Start loops with :meth:`start`; each runs ``loop(stop_event)`` until it returns or ``stop_event`` is set.

    Args:
        on_death: called as ``on_death(death)`` in the dying thread, right after the death is recorded.
        backoff_s: wait before the first restart; doubles per death within ``max_backoff_s * 4`` seconds.
    """

    def __init__(self, on_death: Callable[[ThreadDeath], None] | None = None, backoff_s: float = 0.2,
                 max_backoff_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._on_death = on_death
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self.deaths: dict[str, int] = {}
        self.last_death: ThreadDeath | None = None

    def start(self, name: str, loop: Callable[[threading.Event], None], stop: threading.Event) -> threading.Thread:
        """Run ``loop(stop)`` in a daemon thread called ``name``, restarted whenever it raises."""
        thread = threading.Thread(target=self._run, args=(name, loop, stop), name=name, daemon=True)
        with self._lock:
            self._threads[name] = thread
        thread.start()
        return thread

    def _run(self, name: str, loop: Callable[[threading.Event], None], stop: threading.Event) -> None:
        backoff = self.backoff_s
        last = None
        while not stop.is_set():
            try:
                loop(stop)
                return
            except Exception as exc:
                now = self._clock()
                death = ThreadDeath(name, f"{type(exc).__name__}: {exc}", now)
                with self._lock:
                    self.deaths[name] = self.deaths.get(name, 0) + 1
                    self.last_death = death
                backoff = min(2 * backoff, self.max_backoff_s) if last is not None and (
                    now - last < 4 * self.max_backoff_s) else self.backoff_s
                last = now
                LOG.error("thread %s died (%s); restarting in %.1f s", name, death.reason, backoff, exc_info=exc)
                if self._on_death is not None:
                    try:
                        self._on_death(death)
                    except Exception:
                        LOG.exception("reporting the death of thread %s failed", name)
                stop.wait(backoff)

    def alive(self, name: str) -> bool:
        with self._lock:
            thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def join(self, name: str, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._threads.pop(name, None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def total_deaths(self) -> int:
        with self._lock:
            return sum(self.deaths.values())

    def recent_death(self, within_s: float) -> ThreadDeath | None:
        """The last death if it happened less than ``within_s`` seconds ago."""
        with self._lock:
            death = self.last_death
        return death if death is not None and self._clock() - death.time < within_s else None
