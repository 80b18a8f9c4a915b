"""Object queries: the ``objects`` parameter and run-time updates on ``~/objects`` (std_msgs/String).

Names are untrusted text. A query is refused as a whole (:class:`QueryError`, the previous list is kept) for
what no name can mean: control characters, U+FFFD, too many or too long names, or a name with nothing left once
markup is removed (``[]``). Markup inside a name (``[SEG]``, ``<image>``, other brackets) is *cleaned* the way
the model cleans it before it reaches a prompt (``model.tokenizer.sanitize_object_name``: ``[SEG] cup`` is asked
as ``SEG cup``; underscores are the model's spelling choice, not markup, and do not count): the query is taken,
the name stays as asked in
``Contact.object_label``, and :class:`ObjectQueries` counts it and logs each cleaned name once.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable

from interactvlm_ros.model.tokenizer import sanitize_object_name

MAX_QUERY_BYTES = 10 * 1024
"""Longest accepted ``~/objects`` message (UTF-8 bytes); longer ones are rejected, not truncated."""

MAX_NAME_CHARS = 64
"""Longest accepted single object name."""

REPLACEMENT_CHARACTER = "\ufffd"
"""What rclpy decodes invalid UTF-8 to: a query or frame id holding it was corrupted on the way."""

MAX_LOGGED_CLEANED = 1024
"""Distinct cleaned names remembered (each is logged once); beyond that, cleaned names are counted, not logged."""

LOG = logging.getLogger("interactvlm.node")


class QueryError(ValueError):
    """An object query was rejected; the message says why (the node logs it and keeps the previous query).

    ``kind`` names the problem (``not_text``, ``too_large``, ``control_character``, ``invalid_utf8``,
    ``name_too_long``, ``unusable_name``, ``empty``, ``too_many``): warnings are throttled and diagnostics keep
    the last message per kind. ``bad_names`` counts the names of the query that were refused themselves
    (``name_too_long``, ``unusable_name``).
    """

    def __init__(self, message: str, kind: str = "", bad_names: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.bad_names = bad_names


def parse_object_query(text: str, max_objects: int) -> list[str]:
    """``"cup, bottle"`` -> ``["cup", "bottle"]``: trimmed, de-duplicated, order kept.

    Raises :class:`QueryError` for an empty query, one over 10 kB, control characters, U+FFFD, a name longer than
    64 characters, a name with nothing left after cleaning (:func:`clean_object_name`) or more than
    ``max_objects`` names.
    """
    if not isinstance(text, str):
        raise QueryError(f"object query must be a string, got {type(text).__name__}", "not_text")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_QUERY_BYTES:
        raise QueryError(f"object query is {size} bytes; the limit is {MAX_QUERY_BYTES}", "too_large")
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise QueryError(f"object query contains control character U+{ord(ch):04X} at position {i}",
                             "control_character")
        if ch == REPLACEMENT_CHARACTER:
            raise QueryError(f"object query contains U+FFFD at position {i}: the publisher sent invalid UTF-8 "
                             "(rclpy decodes it to U+FFFD)", "invalid_utf8")
    names: list[str] = []
    for part in text.split(","):
        name = " ".join(part.split())
        if not name:
            continue
        if len(name) > MAX_NAME_CHARS:
            raise QueryError(f"object name {name[:20]!r}... is {len(name)} characters; the limit is "
                             f"{MAX_NAME_CHARS}", "name_too_long", bad_names=1)
        clean_object_name(name)
        if name not in names:
            names.append(name)
    if not names:
        raise QueryError("object query is empty (expected comma-separated names, e.g. 'cup, bottle')", "empty")
    if len(names) > max_objects:
        raise QueryError(f"object query names {len(names)} objects; the limit (node.max_objects) is "
                         f"{max_objects}", "too_many")
    return names


def clean_object_name(name: str) -> str:
    """The name the model is asked with, markup and brackets removed as the prompt does (underscores kept: whether
    they become spaces is the model's choice, ``prompts.keep_underscores``); :class:`QueryError`
    ``unusable_name`` when nothing is left."""
    try:
        return sanitize_object_name(name, MAX_NAME_CHARS, keep_underscores=True)
    except ValueError:
        raise QueryError(f"object name {name!r} has nothing left once brackets and markup are removed",
                         "unusable_name", bad_names=1) from None


class ObjectQueries:
    """The current object list, thread-safe: set from the parameter at start, replaced by valid messages.

    Counts (diagnostics): ``rejected`` queries, ``names_rejected`` (names refused themselves, which refuses their
    query), ``names_cleaned`` (names of accepted lists that the model is asked with in a cleaned form, once per
    list that carries them). ``log`` receives one line per distinct cleaned name, the first time it is seen.
    """

    def __init__(self, initial: list[str], max_objects: int, log: Callable[[str], None] | None = None) -> None:
        self.max_objects = int(max_objects)
        self._log = log or LOG.warning
        self._lock = threading.Lock()
        self.rejected = 0
        self.names_rejected = 0
        self.names_cleaned = 0
        self._logged: set[str] = set()
        self._names: list[str] = []
        self._cleaned: dict[str, str] = {}
        if initial:
            self._take(parse_object_query(",".join(initial), self.max_objects))

    def current(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def cleaned(self) -> dict[str, str]:
        """Names of the current list that the model is asked with in a cleaned form: as asked -> as asked to
        the model (``{"[SEG] cup": "SEG cup"}``)."""
        with self._lock:
            return dict(self._cleaned)

    def replace(self, names: list[str] | None, max_objects: int) -> None:
        """New ``objects`` / ``node.max_objects`` parameters (validated by the caller): ``names`` (None keeps
        the current list) replaces the list, the limit applies to later queries."""
        with self._lock:
            self.max_objects = int(max_objects)
        if names is not None:
            self._take(parse_object_query(",".join(names), self.max_objects) if names else [])

    def update(self, text: str) -> list[str]:
        """Replace the list from a ``~/objects`` message; :class:`QueryError` (list unchanged) when invalid."""
        try:
            names = parse_object_query(text, self.max_objects)
        except QueryError as exc:
            with self._lock:
                self.rejected += 1
                self.names_rejected += exc.bad_names
            raise
        self._take(names)
        return list(names)

    def _take(self, names: list[str]) -> None:
        """Make ``names`` (parsed) the current list; count and log (once each) the names that are cleaned."""
        cleaned = {n: c for n in names if (c := clean_object_name(n)) != n}
        new = []
        with self._lock:
            self._names, self._cleaned = list(names), cleaned
            self.names_cleaned += len(cleaned)
            for name in cleaned:
                if name not in self._logged and len(self._logged) < MAX_LOGGED_CLEANED:
                    self._logged.add(name)
                    new.append(name)
        for name in new:
            self._log(f"object name {name!r} is asked as {cleaned[name]!r}: brackets and markup are removed "
                      "from names before they reach the model (Contact.object_label keeps the name as asked)")
