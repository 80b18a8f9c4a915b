"""Cyclone DDS configuration for the dds transport and the tests.

:func:`loopback_uri` pins Cyclone to the loopback interface with multicast off and unicast discovery of
127.0.0.1 only (``ParticipantIndex auto``): nothing is sent to any other address. Use it as the value of
``CYCLONEDDS_URI`` (:func:`loopback_env` for subprocesses) or pass it to ``cyclonedds.domain.Domain`` (in-process,
before the first participant of that domain is created: :func:`loopback_domain`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Cyclone probes one unicast port per participant index on the peer; this bounds the participants per host.
MAX_PARTICIPANTS = 32


def loopback_uri(max_participants: int = MAX_PARTICIPANTS) -> str:
    """Cyclone XML configuration (any domain id) restricted to ``lo`` and 127.0.0.1."""
    return (
        '<CycloneDDS xmlns="https://cdds.io/config"><Domain Id="any">'
        '<General><Interfaces><NetworkInterface name="lo" multicast="false"/></Interfaces>'
        "<AllowMulticast>false</AllowMulticast>"
        # Loopback carries 64 KB datagrams: 640x480 images in ~15 fragments instead of ~700 (2-3x throughput).
        "<MaxMessageSize>65500B</MaxMessageSize><FragmentSize>63000B</FragmentSize></General>"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{int(max_participants)}</MaxAutoParticipantIndex>"
        '<Peers><Peer address="127.0.0.1"/></Peers></Discovery>'
        "</Domain></CycloneDDS>"
    )


def loopback_env(env: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) with ``CYCLONEDDS_URI`` = :func:`loopback_uri` (and
    ``ROS_DOMAIN_ID`` when ``domain_id`` is given), for subprocesses."""
    out = dict(os.environ if env is None else env)
    out["CYCLONEDDS_URI"] = loopback_uri()
    if domain_id is not None:
        out["ROS_DOMAIN_ID"] = str(int(domain_id))
    return out


def loopback_domain(domain_id: int):
    """Create (in this process) the Cyclone domain ``domain_id`` with the loopback configuration; keep the
    returned ``Domain`` alive while participants of that domain exist."""
    from cyclonedds.domain import Domain

    return Domain(int(domain_id), loopback_uri())


def domain_id_from_env(configured: int = -1) -> int:
    """The ``dds.domain_id`` parameter, or ``ROS_DOMAIN_ID`` when it is -1 (default 0)."""
    if configured >= 0:
        return int(configured)
    value = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) > 232:
        raise ValueError(f"ROS_DOMAIN_ID={value!r} is not a domain id in [0, 232]")
    return int(value)


def ros_topic(name: str) -> str:
    """ROS topic name -> DDS topic name (``/camera/image`` -> ``rt/camera/image``); the name must be fully
    qualified (no ``~`` or relative names: resolve them first)."""
    if not name.startswith("/"):
        raise ValueError(f"topic {name!r} is not absolute; resolve it against the node namespace first")
    return "rt" + name
