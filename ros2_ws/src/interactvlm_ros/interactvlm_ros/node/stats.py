"""Running statistics of the node for diagnostics and the benchmark: rate, latency, drops, errors."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

ERROR_KINDS = ("input", "pipeline", "thread")
"""Kinds of error whose last message is kept apart: a dropped input sample, a frame the pipeline failed on, a
supervised thread that died."""


class NodeStats:
    """Counters and rolling windows (last ``window`` frames), safe to update from several threads.

    ``last_error`` is the most recent error of any kind; ``last_errors[kind]`` keeps the last one of each kind
    (:data:`ERROR_KINDS`) with its time, so a frequent kind does not hide the last error of another.

    Times are milliseconds. ``latency`` = image receipt → outputs published; ``pipeline`` = the model's own
    time; ``overhead`` = latency − pipeline (the node's cost: decoding, queueing, message building, writing).
    """

    def __init__(self, window: int = 200, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.bad_messages = 0
        self.idle_skipped = 0
        self.errors = 0
        self.last_error = ""
        self.last_error_time: float | None = None
        self.last_errors: dict[str, tuple[str, float]] = {}
        self._done_times: deque[float] = deque(maxlen=window)
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.pipeline_ms: deque[float] = deque(maxlen=window)
        self.overhead_ms: deque[float] = deque(maxlen=window)
        self.queue_ms: deque[float] = deque(maxlen=window)
        self.publish_ms: deque[float] = deque(maxlen=window)

    def count_received(self) -> None:
        with self._lock:
            self.received += 1

    def count_idle(self) -> None:
        with self._lock:
            self.idle_skipped += 1

    def record_bad(self, message: str) -> None:
        """A dropped input sample (kind ``input``)."""
        with self._lock:
            self.bad_messages += 1
            self._last(message, "input")

    def record_error(self, message: str, kind: str = "pipeline") -> None:
        """A failed frame (``pipeline``) or a supervised thread that died (``thread``)."""
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r} (expected one of {', '.join(ERROR_KINDS)})")
        with self._lock:
            if kind == "pipeline":
                self.errors += 1
            self._last(message, kind)

    def _last(self, message: str, kind: str) -> None:
        now = self._clock()
        self.last_error, self.last_error_time = message, now
        self.last_errors[kind] = (message, now)

    def recent_errors(self, within_s: float) -> list[tuple[str, str]]:
        """``(kind, message)`` of each kind whose last error is at most ``within_s`` old, newest first."""
        now = self._clock()
        with self._lock:
            items = sorted(self.last_errors.items(), key=lambda kv: -kv[1][1])
        return [(kind, message) for kind, (message, t) in items if now - t < within_s]

    def record_frame(self, latency_ms: float, pipeline_ms: float, queue_ms: float = 0.0,
                     publish_ms: float = 0.0) -> None:
        """One published frame: total latency, the model's time, the wait before the worker took it (receipt →
        worker start, includes decoding and sync) and building + writing the outputs."""
        with self._lock:
            self.queue_ms.append(queue_ms)
            self.publish_ms.append(publish_ms)
            self.processed += 1
            self._done_times.append(self._clock())
            self.latency_ms.append(latency_ms)
            self.pipeline_ms.append(pipeline_ms)
            self.overhead_ms.append(max(0.0, latency_ms - pipeline_ms))

    def rate_hz(self) -> float:
        """Frames per second over the window (0 with fewer than two frames or when stalled for 5 s)."""
        with self._lock:
            times = list(self._done_times)
        if len(times) < 2 or self._clock() - times[-1] > 5.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9)

    @staticmethod
    def percentile(values, q: float) -> float:
        """``q``-th percentile of a window (NaN when empty)."""
        data = list(values)
        return float(np.percentile(np.asarray(data), q)) if data else float("nan")

    def snapshot(self) -> dict[str, float | int | str]:
        """Everything diagnostics report, as plain values."""
        with self._lock:
            lat, pipe, over = list(self.latency_ms), list(self.pipeline_ms), list(self.overhead_ms)
            queue, pub = list(self.queue_ms), list(self.publish_ms)
            counts = dict(received=self.received, processed=self.processed, bad_messages=self.bad_messages,
                          idle_skipped=self.idle_skipped, errors=self.errors, last_error=self.last_error,
                          **{f"last_{k}_error": self.last_errors.get(k, ("", 0.0))[0] for k in ERROR_KINDS})
        return dict(counts, rate_hz=self.rate_hz(), latency_ms_p50=self.percentile(lat, 50),
                    latency_ms_p99=self.percentile(lat, 99), pipeline_ms_p50=self.percentile(pipe, 50),
                    overhead_ms_p50=self.percentile(over, 50), queue_ms_p50=self.percentile(queue, 50),
                    publish_ms_p50=self.percentile(pub, 50))
