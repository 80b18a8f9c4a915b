"""Launch the InteractVLM contact node (and optionally RViz).

    ros2 launch interactvlm_ros interactvlm.launch.py image_topic:=/camera/color/image_raw objects:="cup,bottle"
    ros2 launch interactvlm_ros interactvlm.launch.py transport:=dds use_rviz:=true

Arguments (every one also has a parameter in config/interactvlm.yaml; a launch argument left empty keeps the
file's value):
  image_topic   input sensor_msgs/Image topic                       (topics.image)
  params_file   ROS 2 parameter file                                (default: the package's config/interactvlm.yaml)
  transport     rclpy (lifecycle node via launch_ros), dds (`interactvlm node --transport dds` process, no rclpy
                in the node), auto (= rclpy, which launch itself always has)
  model         preset name or model directory                      (model.name)
  backend       torch | onnxruntime | tensorrt                      (inference.backend)
  objects       comma-separated object names                        (objects)
  camera_frame  RViz fixed frame = the camera's optical frame       (node.camera_frame)
  respawn       restart the node process when it exits (it exits with status 3 if its executor fails); with
                respawn_delay seconds between the exit and the restart
  namespace, node_name, log_level, use_rviz
"""

import json
import shutil
import sys
from pathlib import Path

from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

HERE = Path(__file__).resolve().parent
# launch/ and config/ sit side by side both in the source tree and in share/interactvlm_ros.
DEFAULT_PARAMS = HERE.parent / "config" / "interactvlm.yaml"
RVIZ_CONFIG = HERE / "interactvlm.rviz"

ARGUMENTS = (
    ("image_topic", "", "Input sensor_msgs/Image topic (empty: topics.image of the parameter file)"),
    ("params_file", str(DEFAULT_PARAMS), "ROS 2 parameter file read by the node"),
    ("transport", "auto", "rclpy | dds | auto (auto = rclpy)"),
    ("model", "", "Model preset or directory (empty: model.name of the parameter file)"),
    ("backend", "", "Inference backend torch | onnxruntime | tensorrt (empty: inference.backend)"),
    ("objects", "", "Comma-separated object names to query (empty: objects of the parameter file)"),
    ("camera_frame", "camera_optical_frame", "Camera optical frame: RViz fixed frame and the frame used for "
     "images with an empty frame_id"),
    ("namespace", "", "Node namespace"),
    ("node_name", "interactvlm", "Node name (outputs go to /<namespace>/<node_name>/contacts...)"),
    ("log_level", "info", "Node log level"),
    ("use_rviz", "false", "Start RViz with launch/interactvlm.rviz"),
    ("respawn", "true", "Restart the node process when it exits"),
    ("respawn_delay", "2.0", "Seconds between an exit and the restart"),
)


def overrides(context) -> dict:
    """Parameter overrides from the non-empty launch arguments."""
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    values = {"node.camera_frame": arg("camera_frame"), "node.name": arg("node_name")}
    if arg("image_topic"):
        values["topics.image"] = arg("image_topic")
    if arg("model"):
        values["model.name"] = arg("model")
    if arg("backend"):
        values["inference.backend"] = arg("backend")
    if arg("objects"):
        values["objects"] = [o.strip() for o in arg("objects").split(",") if o.strip()]
    return values


def launch_node(context, *args, **kwargs):
    transport = LaunchConfiguration("transport").perform(context)
    params_file = LaunchConfiguration("params_file").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    name = LaunchConfiguration("node_name").perform(context)
    log_level = LaunchConfiguration("log_level").perform(context)
    respawn = {"respawn": LaunchConfiguration("respawn").perform(context).lower() in ("true", "1", "yes"),
               "respawn_delay": float(LaunchConfiguration("respawn_delay").perform(context))}
    values = overrides(context)
    if transport not in ("auto", "rclpy", "dds"):
        raise ValueError(f"transport:={transport!r}: expected rclpy, dds or auto")
    if transport == "dds":
        # the `interactvlm` command when on PATH (a venv), else this Python's module of the same name
        exe = shutil.which("interactvlm")
        cmd = [exe] if exe else [sys.executable, "-m", "interactvlm_ros"]
        cmd += ["node", "--transport", "dds", "--config", params_file,
               "--log-level", {"fatal": "error", "warn": "warning"}.get(log_level, log_level)]
        values["node.namespace"] = namespace
        for key, value in values.items():
            cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML: "" stays a string, lists stay lists
        return [LogInfo(msg=f"interactvlm: dds transport ({' '.join(cmd)})"),
                ExecuteProcess(cmd=cmd, name=name, output="screen", sigterm_timeout="10", **respawn)]
    return [LifecycleNode(package="interactvlm_ros", executable="interactvlm_node", name=name,
                          namespace=namespace, output="screen", parameters=[params_file, values],
                          arguments=["--ros-args", "--log-level", log_level], **respawn)]


def generate_launch_description() -> LaunchDescription:
    actions = [DeclareLaunchArgument(n, default_value=d, description=doc) for n, d, doc in ARGUMENTS]
    actions.append(OpaqueFunction(function=launch_node))
    actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                        arguments=["-d", str(RVIZ_CONFIG), "-f", LaunchConfiguration("camera_frame")],
                        condition=IfCondition(LaunchConfiguration("use_rviz"))))
    return LaunchDescription(actions)
