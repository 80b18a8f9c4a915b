"""Diagnostics reports -> ``diagnostic_msgs/DiagnosticArray`` (levels OK=0, WARN=1, ERROR=2, STALE=3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.msgs import DiagnosticArray, DiagnosticStatus, KeyValue

DIAGNOSTICS = "diagnostic_msgs/DiagnosticArray"


def diagnostic_status(name: str, level: int, message: str, hardware_id: str = "",
                      values: dict[str, Any] | None = None) -> DiagnosticStatus:
    if int(level) not in (0, 1, 2, 3):
        raise MessageError(DIAGNOSTICS, "status.level", f"must be 0 (OK), 1 (WARN), 2 (ERROR) or 3 (STALE), "
                           f"got {level}")
    return DiagnosticStatus(level=int(level), name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in (values or {}).items()])


def diagnostic_array(reports: Sequence[Any], stamp_ns: int | None = None) -> DiagnosticArray:
    """Reports with ``name``, ``level``, ``message``, ``hardware_id``, ``values`` (dict) and ``stamp_ns``
    (``node.outputs.DiagnosticsReport``) -> one DiagnosticArray stamped with ``stamp_ns`` (default: the first
    report's)."""
    if stamp_ns is None:
        stamp_ns = int(reports[0].stamp_ns) if reports else 0
    status = [diagnostic_status(r.name, r.level, r.message, r.hardware_id, r.values) for r in reports]
    return DiagnosticArray(header=make_header(stamp_ns, ""), status=status)
