"""The node's output side for in-process node tests: every message built with the transports' builders, kept."""

import threading
import time


class CollectingSink:
    """The node's output side, building every message with the transports' builders and keeping them."""

    def __init__(self):
        self.frames, self.diagnostics, self.topologies = [], [], []
        self.cond = threading.Condition()

    def subscriber_count(self) -> int:
        return 1

    def publish_frame(self, outputs) -> None:
        from interactvlm_ros.transport.node_messages import frame_messages

        msgs = frame_messages(outputs)
        msgs = {k: type(m).deserialize(m.serialize()) for k, m in msgs.items()}  # what a subscriber receives
        with self.cond:
            self.frames.append((outputs, msgs))
            self.cond.notify_all()

    def publish_diagnostics(self, report) -> None:
        with self.cond:
            self.diagnostics.append(report)
            self.cond.notify_all()

    def publish_topology(self, topology) -> None:
        self.topologies.append(topology)

    def wait(self, predicate, timeout=120.0):
        end = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for the node's output")
                self.cond.wait(left)
