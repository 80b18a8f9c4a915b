"""Per-topic input accounting: what arrived, what was dropped and why, and when each topic was last heard.

Drop kinds (a contract: diagnostics keys ``<topic>_dropped_<kind>``):
- ``undecodable``: the bytes are not a valid message of the topic's type (bad CDR, invalid UTF-8, truncated);
- ``invalid``: a well-formed message the node cannot use (bad encoding, size, step, intrinsics, object query);
- ``size_mismatch``: camera info or depth for another resolution than the image it was paired with;
- ``handler_error``: an unexpected exception while handling a decoded message (a bug; reported, not fatal);
- ``transport_lost``: samples the middleware reports lost before they reached the node (DDS sample-lost).

Within a kind, a *problem* says what was wrong (for ``invalid`` messages the field: ``encoding``, ``step``,
``data``...; for object queries the :class:`~interactvlm_ros.node.queries.QueryError` kind: ``too_many``,
``unusable_name``...). Diagnostics keep the last message of every problem that occurred (``<topic>_last_<kind>``
or ``<topic>_last_<kind>_<problem>``), so a rare problem is not hidden by a frequent one; ``<topic>_last_drop``
is the most recent of all.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DROP_KINDS = ("undecodable", "invalid", "size_mismatch", "handler_error", "transport_lost")

MAX_PROBLEMS_PER_TOPIC = 32
"""Distinct problems whose last message a topic keeps (problems come from a fixed set of fields in the code; the
bound only guards against a bug that made them unbounded)."""


def problem_of(exc: BaseException) -> str:
    """The problem an exception names, as a key part: a message error's field (``sensor_msgs/Image.step`` ->
    ``step``, ``height/width`` -> ``height_width``), a query error's kind, else "" (the drop kind alone)."""
    part = getattr(exc, "field", "") or getattr(exc, "kind", "")
    return re.sub(r"[^a-z0-9]+", "_", str(part).lower()).strip("_") if isinstance(part, str) else ""


@dataclass
class TopicCounters:
    """Counters of one input topic (``received`` counts every message, dropped or not)."""

    received: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {k: 0 for k in DROP_KINDS})
    last_drop: str = ""
    last_by_problem: dict[str, str] = field(default_factory=dict)
    """``<kind>`` or ``<kind>_<problem>`` -> the last message of that problem."""
    last_received: float | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class InputHealth:
    """Thread-safe counters for the input topics (``image``, ``camera_info``, ``depth``, ``objects``)."""

    def __init__(self, topics, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.topics: dict[str, TopicCounters] = {t: TopicCounters() for t in topics}
        self.started = clock()

    def received(self, topic: str) -> None:
        with self._lock:
            counters = self.topics.setdefault(topic, TopicCounters())
            counters.received += 1
            counters.last_received = self._clock()

    def dropped(self, topic: str, kind: str, reason: str, problem: str = "") -> None:
        """Count a dropped sample of ``topic``; ``reason`` is kept as the last message of ``kind`` (and
        ``problem``, see :func:`problem_of`)."""
        if kind not in DROP_KINDS:
            raise ValueError(f"unknown drop kind {kind!r} (expected one of {', '.join(DROP_KINDS)})")
        key = f"{kind}_{problem}" if problem else kind
        with self._lock:
            counters = self.topics.setdefault(topic, TopicCounters())
            counters.dropped[kind] += 1
            counters.last_drop = reason
            if key in counters.last_by_problem or len(counters.last_by_problem) < MAX_PROBLEMS_PER_TOPIC:
                counters.last_by_problem[key] = reason

    def set_transport_lost(self, topic: str, total: int) -> None:
        """The middleware's running total of lost samples for ``topic`` (replaces, does not add)."""
        with self._lock:
            self.topics.setdefault(topic, TopicCounters()).dropped["transport_lost"] = int(total)

    def silent_for(self, topic: str) -> float:
        """Seconds since ``topic`` was last received (since start when never)."""
        with self._lock:
            last = self.topics[topic].last_received if topic in self.topics else None
        return self._clock() - (self.started if last is None else last)

    def count(self, topic: str, kind: str) -> int:
        with self._lock:
            return self.topics[topic].dropped[kind] if topic in self.topics else 0

    def snapshot(self) -> dict[str, str]:
        """Diagnostics values: ``<topic>_received``, ``<topic>_dropped_<kind>`` (non-zero kinds and
        ``undecodable``/``invalid`` always), ``<topic>_last_drop`` (the most recent) and the last message of
        each problem that occurred, ``<topic>_last_<kind>[_<problem>]``."""
        out: dict[str, str] = {}
        with self._lock:
            for topic, c in self.topics.items():
                out[f"{topic}_received"] = str(c.received)
                for kind, n in c.dropped.items():
                    if n or kind in ("undecodable", "invalid"):
                        out[f"{topic}_dropped_{kind}"] = str(n)
                if c.last_drop:
                    out[f"{topic}_last_drop"] = c.last_drop
                for key, message in sorted(c.last_by_problem.items()):
                    out[f"{topic}_last_{key}"] = message
        return out
