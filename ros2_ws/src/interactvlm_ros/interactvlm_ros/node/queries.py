"""Object queries: the ``objects`` parameter and run-time updates on ``~/objects`` (std_msgs/String)."""

from __future__ import annotations

import threading
import unicodedata

MAX_QUERY_BYTES = 10 * 1024
"""Longest accepted ``~/objects`` message (UTF-8 bytes); longer ones are rejected, not truncated."""

MAX_NAME_CHARS = 64
"""Longest accepted single object name."""

REPLACEMENT_CHARACTER = "\ufffd"
"""What rclpy decodes invalid UTF-8 to: a query or frame id holding it was corrupted on the way."""


class QueryError(ValueError):
    """An object query was rejected; the message says why (the node logs it and keeps the previous query)."""


def parse_object_query(text: str, max_objects: int) -> list[str]:
    """``"cup, bottle"`` -> ``["cup", "bottle"]``: trimmed, de-duplicated, order kept.

    Raises :class:`QueryError` for an empty query, one over 10 kB, control characters, U+FFFD, a name longer than
    64 characters or more than ``max_objects`` names.
    """
    if not isinstance(text, str):
        raise QueryError(f"object query must be a string, got {type(text).__name__}")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_QUERY_BYTES:
        raise QueryError(f"object query is {size} bytes; the limit is {MAX_QUERY_BYTES}")
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise QueryError(f"object query contains control character U+{ord(ch):04X} at position {i}")
        if ch == REPLACEMENT_CHARACTER:
            raise QueryError(f"object query contains U+FFFD at position {i}: the publisher sent invalid UTF-8 "
                             "(rclpy decodes it to U+FFFD)")
    names: list[str] = []
    for part in text.split(","):
        name = " ".join(part.split())
        if not name:
            continue
        if len(name) > MAX_NAME_CHARS:
            raise QueryError(f"object name {name[:20]!r}... is {len(name)} characters; the limit is "
                             f"{MAX_NAME_CHARS}")
        if name not in names:
            names.append(name)
    if not names:
        raise QueryError("object query is empty (expected comma-separated names, e.g. 'cup, bottle')")
    if len(names) > max_objects:
        raise QueryError(f"object query names {len(names)} objects; the limit (node.max_objects) is "
                         f"{max_objects}")
    return names


class ObjectQueries:
    """The current object list, thread-safe: set from the parameter at start, replaced by valid messages."""

    def __init__(self, initial: list[str], max_objects: int) -> None:
        self.max_objects = int(max_objects)
        self._lock = threading.Lock()
        self._names = parse_object_query(",".join(initial), self.max_objects) if initial else []
        self.rejected = 0

    def current(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def replace(self, names: list[str] | None, max_objects: int) -> None:
        """New ``objects`` / ``node.max_objects`` parameters (validated by the caller): ``names`` (None keeps
        the current list) replaces the list, the limit applies to later queries."""
        with self._lock:
            self.max_objects = int(max_objects)
            if names is not None:
                self._names = parse_object_query(",".join(names), self.max_objects) if names else []

    def update(self, text: str) -> list[str]:
        """Replace the list from a ``~/objects`` message; :class:`QueryError` (list unchanged) when invalid."""
        try:
            names = parse_object_query(text, self.max_objects)
        except QueryError:
            with self._lock:
                self.rejected += 1
            raise
        with self._lock:
            self._names = names
        return list(names)
