"""QoS profiles recorded in the output bag (``offered_qos_profiles``), matching what the node offers live."""

from __future__ import annotations

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

_DEFAULT_TIME = QosTime(0, 0)  # "default": ros2 bag play uses the system default (infinite)


def profile(depth: int = 10, reliable: bool = True, latched: bool = False) -> Qos:
    return Qos(QosHistory.KEEP_LAST, int(depth),
               QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               _DEFAULT_TIME, _DEFAULT_TIME, QosLiveliness.AUTOMATIC, _DEFAULT_TIME, False)


RELIABLE = profile(10)
"""Per-frame outputs and diagnostics: reliable, keep last 10, volatile (rclcpp ``QoS(10)``)."""

LATCHED = profile(1, latched=True)
"""Mesh topology: reliable, keep last 1, transient local, so ``ros2 bag play`` re-latches it."""

TF = profile(100)
"""``/tf`` (``body_<id>`` frames when reconstructing): reliable, keep last 100, volatile (tf2's broadcaster)."""
