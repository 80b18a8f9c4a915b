"""What the kept part of an unfinished ``interactvlm bag`` run already holds, so that a resumed run skips it.

Input messages are recognised by content — ``(topic, log time, CRC-32 of the serialized message)`` — not by
position, so the input may be read in another order (e.g. complete now, truncated before) and still no message is
copied twice and no image processed twice.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from interactvlm_ros.bag.reader import IMAGE_TYPES
from interactvlm_ros.bag.writer import BagTopic


def message_key(topic: str, log_time: int, data: bytes) -> tuple[str, int, int]:
    """How an input message is recognised in the output."""
    return topic, int(log_time), zlib.crc32(data)


@dataclass
class ResumeState:
    """Built from the kept messages of an unfinished run (:meth:`add`); ``outputs`` = the (topic, type) pairs the
    node writes, ``image_topics`` = the processed image topics, ``topology_topic`` = the latched mesh topic."""

    outputs: Collection[tuple[str, str]]
    image_topics: Collection[str]
    topology_topic: str
    done: Counter = field(default_factory=Counter)
    meshes: set[str] = field(default_factory=set)
    frames: int = 0
    messages: int = 0

    def add(self, topic: BagTopic, log_time: int, data: bytes) -> None:
        """One kept message: an input copy (remembered, counted as a frame if an image) or a node output."""
        self.messages += 1
        if (topic.topic, topic.msgtype) in self.outputs:
            if topic.topic == self.topology_topic:
                from interactvlm_ros.transport.msgs import MeshTopology

                self.meshes.add(MeshTopology.deserialize(data).mesh_id)
            return
        self.done[message_key(topic.topic, log_time, data)] += 1
        self.frames += topic.topic in self.image_topics and topic.msgtype in IMAGE_TYPES

    def take(self, topic: str, log_time: int, data: bytes) -> bool:
        """Whether this input message is already in the output (each kept copy matches one input message)."""
        if not self.done:
            return False
        key = message_key(topic, log_time, data)
        if self.done[key] <= 0:
            return False
        self.done[key] -= 1
        if not self.done[key]:
            del self.done[key]
        return True

    @property
    def unmatched(self) -> int:
        """Kept input copies that no input message matched (so far)."""
        return sum(self.done.values())
