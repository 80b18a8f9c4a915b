"""Latest-frame-wins hand-over between the receive thread and the inference worker."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-element queue: ``put`` replaces a frame the worker has not taken yet and counts it as dropped.

    Memory stays bounded by one pending item whatever the input rate; the worker always gets the newest frame.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced (dropped) an unprocessed one."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The pending item (removing it), waiting up to ``timeout`` seconds; None on timeout or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def notify(self) -> None:
        """Wake a waiting ``take`` (it returns None) so the worker can do other due work (diagnostics)."""
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget a pending item without counting it as dropped (e.g. on deactivate)."""
        with self._cond:
            self._item = None

    def close(self) -> None:
        """Wake a waiting ``take`` for shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._item is not None
