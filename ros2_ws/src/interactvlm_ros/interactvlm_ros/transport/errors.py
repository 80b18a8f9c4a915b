"""The one exception conversions raise for unusable messages or inputs."""

from __future__ import annotations


class MessageError(ValueError):
    """A message (or the data to build one) is invalid. ``str()`` names the message type, the field and the
    problem, e.g. ``sensor_msgs/Image.step: 100 is smaller than width * 3 bytes (1920)``."""

    def __init__(self, msg_type: str, field: str, problem: str) -> None:
        self.msg_type = msg_type
        self.field = field
        self.problem = problem
        super().__init__(f"{msg_type}.{field}: {problem}" if field else f"{msg_type}: {problem}")
