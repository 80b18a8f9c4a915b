"""Throttled warnings: the first of a kind is logged at once, repeats at most once per period with a count."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class ThrottledWarnings:
    """Log a warning per ``key`` at most once every ``period_s`` seconds.

    Suppressed repeats are counted and reported with the next logged one ("(12 similar suppressed)"), so a
    flood of bad messages costs one log line per period instead of one per message.
    """

    def __init__(self, warn: Callable[[str], None] | None = None, period_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warn = warn or logging.getLogger("interactvlm.node").warning
        self.period_s = float(period_s)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        self.logged = 0

    def warn(self, key: str, message: str) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``period_s`` ago; True when it was logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
            self.logged += 1
        if skipped:
            message = f"{message} ({skipped} similar suppressed in the last {self.period_s:g} s)"
        self._warn(message)
        return True
