"""What the transports hand the node: plain domain values (no ROS types), and how received bytes become them.

A transport gives :meth:`~interactvlm_ros.node.core.ContactNode.on_serialized` each sample's bytes with the
topic's :class:`InputCodec`; the node runs the codec's two steps inside its error boundary, so a failure in
``deserialize`` is counted as ``undecodable`` and one in ``convert`` as ``invalid``. The values are:

- ``image``: :class:`Stamped` with an RGB ``uint8 [H,W,3]`` array;
- ``camera_info``: :class:`Stamped` with :class:`Calibration`;
- ``depth``: :class:`Stamped` with a ``float32 [H,W]`` array in metres (NaN = invalid);
- ``objects``: the query text (``str``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from interactvlm_ros.node.outputs import FrameHeader


@dataclass(frozen=True)
class Calibration:
    """A camera calibration: pinhole intrinsics ``K [3,3]`` (float64) and the ``(height, width)`` they are for
    (None when unset)."""

    K: np.ndarray
    size: tuple[int, int] | None


@dataclass(frozen=True)
class Stamped:
    """A stamped input value: the message's header and its decoded content."""

    header: FrameHeader
    value: Any


@dataclass(frozen=True)
class InputCodec:
    """One input topic's decoding: ``deserialize(bytes) -> message`` (raises on bytes that are not a message of
    the topic's type) and ``convert(message) -> value`` (raises ``ValueError`` naming the problem for a message
    the node cannot use)."""

    deserialize: Callable[[bytes], Any]
    convert: Callable[[Any], Any]
