"""interactvlm_msgs on the DDS wire; field meanings are documented in ros2_ws/src/interactvlm_msgs/msg/*.msg.

Packed representation: ``uint32[]``/``float32[]`` fields are 1-D numpy arrays, ``geometry_msgs/Point[]`` fields
``[N, 3]`` float64 arrays.
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float32, sequence, uint32

from interactvlm_ros.transport.msgs.geometry import Point
from interactvlm_ros.transport.msgs.packed import pack_sequences
from interactvlm_ros.transport.msgs.std import Header


@pack_sequences
@dataclass
class Contact(IdlStruct, typename="interactvlm_msgs::msg::dds_::Contact_"):
    body_id: str = ""
    object_label: str = ""
    object_prompt_name: str = ""
    found: bool = False
    reason: str = ""
    body_model: str = ""
    num_body_vertices: uint32 = 0
    body_mesh_id: str = ""
    human_vertex_indices: sequence[uint32] = field(default_factory=list)
    human_probabilities: sequence[float32] = field(default_factory=list)
    object_mesh_id: str = ""
    num_object_vertices: uint32 = 0
    object_vertex_indices: sequence[uint32] = field(default_factory=list)
    object_probabilities: sequence[float32] = field(default_factory=list)
    threshold: float32 = 0.0
    human_contact_points: sequence[Point] = field(default_factory=list)
    object_contact_points: sequence[Point] = field(default_factory=list)
    confidence: float32 = 0.0


@dataclass
class ContactArray(IdlStruct, typename="interactvlm_msgs::msg::dds_::ContactArray_"):
    header: Header = field(default_factory=Header)
    contacts: sequence[Contact] = field(default_factory=list)


@pack_sequences
@dataclass
class MeshTopology(IdlStruct, typename="interactvlm_msgs::msg::dds_::MeshTopology_"):
    header: Header = field(default_factory=Header)
    mesh_id: str = ""
    kind: str = ""
    name: str = ""
    num_vertices: uint32 = 0
    vertices: sequence[float32] = field(default_factory=list)
    triangles: sequence[uint32] = field(default_factory=list)
