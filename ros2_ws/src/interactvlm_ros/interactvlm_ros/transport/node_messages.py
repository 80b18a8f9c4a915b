"""The node's outputs and inputs as wire messages: :class:`FrameOutputs` → ContactArray, MarkerArray, clouds;
reports → DiagnosticArray; topologies → MeshTopology (inputs: :mod:`.node_inputs`).

Both transports use these: the dds transport writes the structs, the rclpy transport publishes their CDR
bytes (identical on the wire), so the two transports publish byte-identical messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interactvlm_ros.node.outputs import DiagnosticsReport, FrameOutputs
from interactvlm_ros.pipeline.result import MeshTopology
from interactvlm_ros.transport.clouds import contact_cloud
from interactvlm_ros.transport.contacts import contact_array
from interactvlm_ros.transport.diagnostics import diagnostic_array
from interactvlm_ros.transport.markers import contact_markers
from interactvlm_ros.transport.tf import body_transforms
from interactvlm_ros.transport.topology import topology_of


def frame_messages(outputs: FrameOutputs) -> dict[str, Any]:
    """``{"contacts": ContactArray, "human_cloud"/"object_cloud": PointCloud2, "markers": MarkerArray,
    "tf": TFMessage}`` of one frame, every one with the source image's header. Markers only when
    ``outputs.with_markers``; ``tf`` (``body_<id>`` children of the image frame) only for a reconstructed frame.
    Contact points are filled from the posed meshes when the frame was reconstructed."""
    header = outputs.header
    counts = {c.label: outputs.object_vertex_counts.get(c.object_mesh_id, 0) for c in outputs.result.contacts}
    out: dict[str, Any] = {"contacts": contact_array(outputs.result, header, outputs.threshold,
                                                     body_mesh_id=outputs.body_mesh_id, body_id=outputs.body_id,
                                                     body_vertices=outputs.body_points,
                                                     object_vertices=outputs.object_points,
                                                     object_vertex_counts=counts)}
    if outputs.with_clouds:
        human = outputs.human
        out["human_cloud"] = contact_cloud(header, human.points if human else np.zeros((0, 3)),
                                           human.probs if human else np.zeros(0))
        if outputs.objects:
            points = np.concatenate([o.points for o in outputs.objects])
            probs = np.concatenate([o.probs for o in outputs.objects])
        else:
            points, probs = np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
        out["object_cloud"] = contact_cloud(header, points, probs)
    if outputs.with_markers:
        out["markers"] = contact_markers(header, outputs.human, outputs.objects)
    if outputs.body_frames:
        out["tf"] = body_transforms(header, [(b.body_id, b.translation, b.rotation) for b in outputs.body_frames])
    return out


def diagnostics_message(report: DiagnosticsReport):
    return diagnostic_array([report])


def topology_message(topology: MeshTopology):
    return topology_of(topology)
