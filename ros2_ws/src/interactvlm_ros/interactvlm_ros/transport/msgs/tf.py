"""tf2_msgs types on the DDS wire (``/tf`` and ``/tf_static`` carry TFMessage)."""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import sequence

from interactvlm_ros.transport.msgs.geometry import TransformStamped


@dataclass
class TFMessage(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    transforms: sequence[TransformStamped] = field(default_factory=list)
