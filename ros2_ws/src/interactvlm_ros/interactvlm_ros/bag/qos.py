"""QoS profiles recorded in the output bag (``offered_qos_profiles``): the profiles of
:mod:`interactvlm_ros.transport.endpoints`, which the live node offers."""

from __future__ import annotations

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from interactvlm_ros.transport.endpoints import QosSpec

_DEFAULT_TIME = QosTime(0, 0)  # "default": ros2 bag play uses the system default (infinite)


def bag_qos(spec: QosSpec) -> Qos:
    """The rosbag2 offered-QoS record of ``spec`` (``system_default`` reliability is recorded as reliable)."""
    return Qos(QosHistory.KEEP_LAST, int(spec.depth),
               QosReliability.BEST_EFFORT if spec.reliability == "best_effort" else QosReliability.RELIABLE,
               QosDurability.TRANSIENT_LOCAL if spec.latched else QosDurability.VOLATILE,
               _DEFAULT_TIME, _DEFAULT_TIME, QosLiveliness.AUTOMATIC, _DEFAULT_TIME, False)
