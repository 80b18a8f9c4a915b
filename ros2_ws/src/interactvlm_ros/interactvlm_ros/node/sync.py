"""Approximate time synchronisation of the image with the optional camera info and depth streams.

The image drives the pipeline. For each optional stream that is enabled *and is arriving*, an image waits
(at most ``max_wait_s`` of wall time) for a message whose stamp is within ``tolerance_s`` of its own; it is
released without that stream when none can match any more (a newer message of that stream is already past
the tolerance window) or the wait expires. Images never wait for a stream that

- never published,
- stopped: nothing arrived for ``max(max_wait_s, 3 × its usual period)`` of wall time, or
- does not match: its last ``stall_after`` waits all expired unmatched (stamps from another clock, zero
  stamps...); waiting resumes as soon as one of its messages matches an image again.

``waiting_for(stream)`` says which of these applies, for diagnostics.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncedFrame:
    """An image and the stream messages paired with it (``None`` where a stream had no match)."""

    stamp: float
    image: Any
    matched: dict[str, Any] = field(default_factory=dict)
    received: float = 0.0


class ApproximateSync:
    """Pair each image with the closest-in-stamp message of each optional stream within ``tolerance_s``.

    Stamps are seconds (float). Memory is bounded: ``history`` messages per stream and ``max_pending``
    waiting images (older pending images are released unmatched rather than dropped silently).
    """

    def __init__(self, streams: Iterable[str], tolerance_s: float, max_wait_s: float = 0.5,
                 history: int = 16, max_pending: int = 4, stall_after: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.streams = tuple(streams)
        self.tolerance_s = float(tolerance_s)
        self.max_wait_s = float(max_wait_s)
        self.max_pending = int(max_pending)
        self.stall_after = int(stall_after)
        self._clock = clock
        self._recent: dict[str, deque[tuple[float, Any]]] = {s: deque(maxlen=history) for s in self.streams}
        self._arrivals: dict[str, deque[float]] = {s: deque(maxlen=history) for s in self.streams}
        self._expired_in_a_row = {s: 0 for s in self.streams}
        self._pending: deque[SyncedFrame] = deque()
        self.unmatched = {s: 0 for s in self.streams}

    def add_image(self, stamp: float, image: Any) -> list[SyncedFrame]:
        """Offer an image; returns the frames that are complete now (possibly this one, possibly older ones)."""
        self._pending.append(SyncedFrame(stamp, image, {}, self._clock()))
        return self._release()

    def add(self, stream: str, stamp: float, message: Any) -> list[SyncedFrame]:
        """Offer a message of an optional stream; returns frames completed by it."""
        self._recent[stream].append((stamp, message))
        self._arrivals[stream].append(self._clock())
        return self._release()

    def poll(self) -> list[SyncedFrame]:
        """Release images whose wait expired (call periodically)."""
        return self._release()

    def reset(self) -> None:
        self._pending.clear()
        for q in (*self._recent.values(), *self._arrivals.values()):
            q.clear()
        self._expired_in_a_row = {s: 0 for s in self.streams}

    def waiting_for(self, stream: str) -> str:
        """Whether images wait for ``stream``: ``"yes"``, ``"no: never received"``, ``"no: stopped ..."`` or
        ``"no: stamps do not match ..."``."""
        arrivals = self._arrivals[stream]
        if not arrivals:
            return "no: never received"
        silent = self._clock() - arrivals[-1]
        if silent > self._live_window(stream):
            return f"no: stopped (nothing for {silent:.1f} s)"
        if self._expired_in_a_row[stream] >= self.stall_after:
            return (f"no: stamps do not match the images (the last {self._expired_in_a_row[stream]} waits expired; "
                    f"tolerance {self.tolerance_s:g} s)")
        return "yes"

    def _live_window(self, stream: str) -> float:
        """How long after its last message a stream still counts as arriving: 3 usual periods, at least
        ``max_wait_s``."""
        arrivals = list(self._arrivals[stream])
        gaps = [b - a for a, b in zip(arrivals[:-1], arrivals[1:], strict=True)]
        period = statistics.median(gaps) if len(gaps) > 1 else 0.0
        return max(self.max_wait_s, 3.0 * period)

    def _release(self) -> list[SyncedFrame]:
        now = self._clock()
        out: list[SyncedFrame] = []
        while self._pending:
            frame = self._pending[0]
            timed_out = now - frame.received >= self.max_wait_s
            expired = timed_out or len(self._pending) > self.max_pending
            if not (self._complete(frame) or expired):
                break
            self._pending.popleft()
            for s in self.streams:
                if s not in frame.matched:
                    frame.matched[s] = None
                    if self._recent[s]:
                        self.unmatched[s] += 1
                        if timed_out:
                            self._expired_in_a_row[s] += 1
            out.append(frame)
        return out

    def _complete(self, frame: SyncedFrame) -> bool:
        done = True
        for s in self.streams:
            if s in frame.matched:
                continue
            recent = self._recent[s]
            if not recent:
                continue  # never seen: optional stream absent, do not wait
            best = min(recent, key=lambda item: abs(item[0] - frame.stamp))
            if abs(best[0] - frame.stamp) <= self.tolerance_s:
                frame.matched[s] = best[1]
                self._expired_in_a_row[s] = 0
            elif max(item[0] for item in recent) > frame.stamp + self.tolerance_s:
                frame.matched[s] = None  # the stream has moved past this image: no match will come
                self.unmatched[s] += 1
            elif self.waiting_for(s) != "yes":
                frame.matched[s] = None  # stopped or never matching: do not hold the image back
                self.unmatched[s] += 1
            else:
                done = False
        return done
