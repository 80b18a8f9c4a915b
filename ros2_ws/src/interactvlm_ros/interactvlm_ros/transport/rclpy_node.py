"""The ``rclpy`` transport: the contact node as a ROS 2 lifecycle node (``ros2 run interactvlm_ros
interactvlm_node``).

- Every parameter of ``config/schema.py`` is declared with its type, description and range/choices
  (``ros2 param describe``); the same YAML file works (``--ros-args --params-file config/interactvlm.yaml``).
  Values are validated like the CLI does: a wrong value or an unknown key in the file fails *configure* with
  a message naming the key.
- *configure* loads the model (and engines), the body topology and the object library and creates the
  publishers; *activate* starts the worker and subscribes; *deactivate* unsubscribes, stops the worker and
  frees pending frames (and the CUDA cache); *cleanup* drops the model and publishers; *shutdown* does all.
- ``main()`` drives configure + activate itself (like yolo_ros) unless ``node.autostart`` is false; then a
  lifecycle manager or ``ros2 lifecycle set /interactvlm configure`` does it.
- Inputs are subscribed raw (serialized CDR bytes) and each sample is deserialized by the node inside its own
  error boundary (``ContactNode.on_serialized``): rclpy would otherwise raise in the executor on one message
  with invalid UTF-8 and stop the node. Images go through cv_bridge when it is installed, else the strict
  numpy decoders (same RGB result). Lost samples (the ``message_lost`` QoS event) are counted per topic.
- If the executor loop fails anyway, ``main`` logs the reason and exits with status 3, so that the launch
  file's ``respawn`` starts a fresh process.
- Outputs are built once by the same code as the dds transport and published as their CDR bytes
  (``Publisher.publish(bytes)``), so both transports put identical bytes on the wire and no per-element
  Python conversion of large arrays is needed.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

try:  # Jazzy; Humble's name for the same class is rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # pragma: no cover - Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from interactvlm_ros.config.loader import Config, ConfigError, validate_value
from interactvlm_ros.config.schema import PARAMETERS, PARAMETERS_BY_NAME, Param
from interactvlm_ros.node.core import ContactNode
from interactvlm_ros.node.inputs import InputCodec
from interactvlm_ros.node.live_parameters import update_parameters
from interactvlm_ros.node.outputs import DiagnosticsReport, FrameOutputs
from interactvlm_ros.pipeline.result import MeshTopology
from interactvlm_ros.transport import endpoints, node_messages
from interactvlm_ros.transport.endpoints import QosSpec
from interactvlm_ros.transport.image_codec import decode_image, image_pixels
from interactvlm_ros.transport.node_inputs import input_codecs

try:  # the interface package is built by colcon next to us
    from interactvlm_msgs.msg import ContactArray
    from interactvlm_msgs.msg import MeshTopology as MeshTopologyMsg
except ImportError:  # pragma: no cover - reported at configure
    ContactArray = MeshTopologyMsg = None

NODE_NAME = "interactvlm"
EXIT_EXECUTOR_FAILED = 3
"""``main``'s exit status when the executor loop itself failed (launch respawns the node)."""
# Parameters every rclpy node has (or that rcl adds) and that are therefore not "unknown keys".
_ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")

_KIND_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "float": ParameterType.PARAMETER_DOUBLE,
    "str": ParameterType.PARAMETER_STRING,
    "str_list": ParameterType.PARAMETER_STRING_ARRAY,
    "float_list": ParameterType.PARAMETER_DOUBLE_ARRAY,
}
_KIND_PARAMETER_TYPES = {
    "bool": Parameter.Type.BOOL, "int": Parameter.Type.INTEGER, "float": Parameter.Type.DOUBLE,
    "str": Parameter.Type.STRING, "str_list": Parameter.Type.STRING_ARRAY,
    "float_list": Parameter.Type.DOUBLE_ARRAY,
}


def parameter_descriptor(p: Param) -> ParameterDescriptor:
    """The ROS descriptor of a schema parameter: type, doc, choices and numeric range."""
    d = ParameterDescriptor(name=p.name, type=_KIND_TYPES[p.kind], description=p.doc)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.kind == "int" and (p.min is not None or p.max is not None):
        d.integer_range = [IntegerRange(from_value=int(p.min if p.min is not None else -(2 ** 63)),
                                        to_value=int(p.max if p.max is not None else 2 ** 63 - 1), step=0)]
    elif p.kind == "float" and (p.min is not None or p.max is not None):
        d.floating_point_range = [FloatingPointRange(from_value=float(p.min if p.min is not None else -1e308),
                                                     to_value=float(p.max if p.max is not None else 1e308),
                                                     step=0.0)]
    return d


def _plain(value: Any) -> Any:
    """A ROS parameter value as the schema's Python value (arrays -> lists)."""
    return list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__len__") else value


def _ros_default(p: Param) -> Any:
    if p.kind == "float":
        return float(p.default)
    if p.kind in ("str_list", "float_list"):
        return list(p.default)
    return p.default


def ros_qos(spec: QosSpec) -> QoSProfile:
    """The rclpy ``QoSProfile`` of a :class:`~interactvlm_ros.transport.endpoints.QosSpec`."""
    policy = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE,
              "system_default": QoSReliabilityPolicy.SYSTEM_DEFAULT}[spec.reliability]
    durability = QoSDurabilityPolicy.TRANSIENT_LOCAL if spec.latched else QoSDurabilityPolicy.VOLATILE
    return QoSProfile(reliability=policy, history=QoSHistoryPolicy.KEEP_LAST, depth=spec.depth,
                      durability=durability)


OUTPUT_QOS = ros_qos(endpoints.DEFAULT)
"""ROS default QoS (``rclcpp::QoS(10)``): outputs, camera info, object queries."""
ROS_TYPES = {"interactvlm_msgs/msg/ContactArray": ContactArray, "visualization_msgs/msg/MarkerArray": MarkerArray,
             "sensor_msgs/msg/PointCloud2": PointCloud2, "diagnostic_msgs/msg/DiagnosticArray": DiagnosticArray,
             "tf2_msgs/msg/TFMessage": TFMessage, "interactvlm_msgs/msg/MeshTopology": MeshTopologyMsg,
             "sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage,
             "sensor_msgs/msg/CameraInfo": CameraInfo, "std_msgs/msg/String": String}
"""ROS type name -> rclpy message class."""


def cv_bridge_image(cfg) -> Callable[[Any], np.ndarray] | None:
    """An image decoder that converts with cv_bridge (after the same strict checks), or None when cv_bridge is
    not installed (the strict numpy decoder is used)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    bridge = CvBridge()
    limit = int(cfg.node.max_image_pixels)

    def image(msg) -> np.ndarray:
        image_pixels(msg, limit)  # validates encoding, size, step, data length (names the field)
        if msg.encoding in ("mono16",):
            return decode_image(msg, limit)
        return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))

    return image


def ros_codecs(cfg) -> dict[str, InputCodec]:
    """The input codecs over rclpy's own message classes (``deserialize_message``), cv_bridge for images when
    installed."""
    deserializers = {key: functools.partial(deserialize_message, message_type=ROS_TYPES[ros_type])
                     for key, ros_type in endpoints.input_types(cfg).items()}
    return input_codecs(cfg, deserializers, image=cv_bridge_image(cfg))


class RclpySink:
    """The node's :class:`OutputSink` over lifecycle publishers (CDR bytes of the wire messages).

    Once ``context`` is shut down (Ctrl-C: rclpy's signal handler shuts it down before the node stops) nothing
    can be published: the sink then counts no subscriber and drops what the stopping node still sends (its last
    diagnostics report) instead of failing on an invalid publisher."""

    def __init__(self, publishers: dict[str, Any], topology_publisher, context=None) -> None:
        self.publishers = publishers
        self._topology_publisher = topology_publisher
        self._context = context
        self._lock = threading.Lock()

    def _open(self) -> bool:
        return self._context is None or self._context.ok()

    def subscriber_count(self) -> int:
        if not self._open():
            return 0
        return sum(self.publishers[k].get_subscription_count() for k in endpoints.FRAME_OUTPUTS)

    def publish_frame(self, outputs: FrameOutputs) -> None:
        for kind, msg in node_messages.frame_messages(outputs).items():
            self._publish(kind, msg)

    def publish_diagnostics(self, report: DiagnosticsReport) -> None:
        self._publish("diagnostics", node_messages.diagnostics_message(report))

    def publish_topology(self, topology: MeshTopology) -> None:
        """Latched: one transient-local depth-1 publisher per mesh, so a late subscriber gets every mesh."""
        kind = f"topology:{topology.mesh_id}"
        with self._lock:
            if kind not in self.publishers:
                self.publishers[kind] = self._topology_publisher()
        self._publish(kind, node_messages.topology_message(topology))

    def _publish(self, kind: str, msg) -> None:
        if not self._open():
            return
        with self._lock:
            self.publishers[kind].publish(msg.serialize())


class InteractVLMNode(LifecycleNode):
    """InteractVLM contact estimation as a managed (lifecycle) node."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for p in PARAMETERS:
            if p.kind in ("str_list", "float_list") and not p.default:
                # an empty list has no inferable type: declare the type, use the default when not overridden
                self.declare_parameter(p.name, _KIND_PARAMETER_TYPES[p.kind], parameter_descriptor(p))
            else:
                self.declare_parameter(p.name, _ros_default(p), parameter_descriptor(p))
        self.cfg: Config | None = None
        self.parts = None
        self.core: ContactNode | None = None
        self._output_publishers: dict[str, Any] = {}
        self._input_subscriptions: list[Any] = []
        self._poll_timer = None
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

    # --- parameters -----------------------------------------------------------------------------------------
    def read_config(self) -> Config:
        """The declared parameters as a validated :class:`Config` (``ConfigError`` names the key)."""
        values = {}
        for p in PARAMETERS:
            try:
                value = self.get_parameter(p.name).value
            except ParameterUninitializedException:
                value = None
            if value is None:
                value = p.default
            if p.kind in ("str_list", "float_list"):
                value = list(value)
            values[p.name] = validate_value(p, value, "ROS parameter")
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        unknown = sorted(n for n in overrides if n not in PARAMETERS_BY_NAME and n not in _ROS_OWN_PARAMETERS
                         and not n.startswith("qos_overrides."))
        if unknown:
            raise ConfigError(f"unknown parameter(s) for {self.get_fully_qualified_name()}: {', '.join(unknown)}")
        values["node.name"] = self.get_name()  # the real name (launch / --ros-args -r __node:=... may change it)
        values["node.namespace"] = self.get_namespace().strip("/")  # likewise (diagnostics' hardware_id)
        return Config(values, source="ROS parameters")

    def _check_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """``ros2 param set``: validate like the parameter file; while configured, refuse parameters that are
        read at configure (the reason says to reconfigure). rclpy has checked type and range already."""
        changes = {p.name: _plain(p.value) for p in params if p.name in PARAMETERS_BY_NAME}
        cfg = self.cfg
        if cfg is None:  # unconfigured: any valid value is taken; configure reads it
            try:
                cfg = self.read_config()
            except ConfigError:  # reported at configure; check the new values on their own
                cfg = Config({p.name: p.default for p in PARAMETERS}, source="ROS parameters")
        update = update_parameters(cfg, changes, configured=self.core is not None)
        if not update.ok:
            reason = "; ".join(update.reasons)
            self.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        """After a successful set: a configured node applies the new live values to the running core."""
        core, cfg = self.core, self.cfg
        if core is None or cfg is None:
            return
        changes = {p.name: _plain(p.value) for p in params if p.name in PARAMETERS_BY_NAME}
        update = update_parameters(cfg, changes)
        if update.ok and update.changed:
            self.cfg = update.config
            core.apply(update.config)
            self.get_logger().info("parameters applied: " + ", ".join(f"{k}={update.config[k]!r}"
                                                                      for k in update.changed))

    # --- lifecycle ------------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from interactvlm_ros.node.components import NodeComponents

        try:
            self.cfg = self.read_config()
        except ConfigError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        if ContactArray is None:
            self.get_logger().error("configure failed: interactvlm_msgs is not built/sourced (colcon build)")
            return TransitionCallbackReturn.FAILURE
        try:
            self.parts = NodeComponents.from_config(self.cfg)
        except Exception as exc:  # noqa: BLE001 - any load failure is a failed transition, reported
            self.get_logger().error(f"configure failed: could not load the model: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        cfg = self.cfg
        self._output_publishers = {e.key: self.create_lifecycle_publisher(ROS_TYPES[e.ros_type],
                                                                          cfg[f"topics.{e.key}"], ros_qos(e.qos))
                                   for e in endpoints.OUTPUTS}
        topology = functools.partial(self._topology_publisher, cfg.topics.topology)
        sink = RclpySink(self._output_publishers, topology, self.context)
        self.core = self.parts.build_node(cfg, sink, warn=self.get_logger().warning)
        self.get_logger().info(f"configured: model {cfg.model.name} ({self.parts.backend}), body "
                               f"{self.parts.body.name}, loaded in {self.parts.load_s:.1f} s")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        if ret != TransitionCallbackReturn.SUCCESS:
            return ret
        cfg, core = self.cfg, self.core
        core.start()
        codecs = ros_codecs(cfg)
        self._input_subscriptions = [self._raw_subscription(core, e.key, ROS_TYPES[e.ros_type], ros_qos(e.qos),
                                                            codecs[e.key]) for e in endpoints.inputs(cfg)]
        self._poll_timer = self.create_timer(0.05, core.poll)
        self.get_logger().info(f"active: {endpoints.input_topic(cfg, 'image', self.resolve_topic_name)} -> "
                               f"{self.resolve_topic_name(cfg.topics.contacts)}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        if self.core is not None:
            self.core.stop()
        _free_accelerator_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        if self.core is not None:
            self.core.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        if self.core is not None:
            self.core.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _raw_subscription(self, core: ContactNode, key: str, msg_type, qos: QoSProfile, codec: InputCodec):
        """Subscribe ``topics.<key>`` as serialized bytes; the node decodes each sample in its error boundary."""
        events = SubscriptionEventCallbacks(
            message_lost=lambda info: core.on_transport_lost(key, int(info.total_count)))
        topic = endpoints.input_topic(self.cfg, key, self.resolve_topic_name)  # as image_transport names it
        return self.create_subscription(msg_type, topic,
                                        lambda data: core.on_serialized(key, data, codec), qos,
                                        event_callbacks=events, raw=True)

    def _topology_publisher(self, topic: str):
        """A new latched publisher (one per mesh); created while active, so enabled here."""
        pub = self.create_lifecycle_publisher(MeshTopologyMsg, topic, ros_qos(endpoints.TOPOLOGY.qos))
        pub.on_activate(None)
        return pub

    def _unsubscribe(self) -> None:
        for sub in self._input_subscriptions:
            self.destroy_subscription(sub)
        self._input_subscriptions = []
        if self._poll_timer is not None:
            self.destroy_timer(self._poll_timer)
            self._poll_timer = None

    def _release(self) -> None:
        for pub in self._output_publishers.values():
            self.destroy_lifecycle_publisher(pub)
        self._output_publishers = {}
        self.core = None
        self.parts = None
        _free_accelerator_cache()


def _free_accelerator_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None, duration: float = 0.0) -> int:
    """``ros2 run interactvlm_ros interactvlm_node [--ros-args ...]``: create, self-drive configure + activate
    (unless ``node.autostart`` is false), spin until shutdown (or ``duration`` seconds)."""
    rclpy.init(args=sys.argv if argv is None else argv)
    node = InteractVLMNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    status = 0
    try:
        if node.get_parameter("node.autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("configure failed; exiting")
                status = 1
            elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("activate failed; exiting")
                status = 1
        if status == 0:
            end = time.monotonic() + duration if duration > 0 else None
            while rclpy.ok() and (end is None or time.monotonic() < end):
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - the executor itself failed: exit so launch respawns us
        node.get_logger().fatal(f"executor failed ({type(exc).__name__}: {exc}); exiting with status "
                                f"{EXIT_EXECUTOR_FAILED} so that launch respawns the node")
        status = EXIT_EXECUTOR_FAILED
    finally:
        _shutdown(node)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return status


def _shutdown(node: InteractVLMNode) -> None:
    """Deactivate/clean up whatever state the node is in (best effort at exit)."""
    try:
        node.trigger_shutdown()
    except Exception:  # noqa: BLE001 - already finalized or context gone: stop our own thread at least
        if node.core is not None:
            node.core.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
