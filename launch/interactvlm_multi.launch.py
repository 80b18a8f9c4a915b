"""Launch one InteractVLM contact node per camera, each in the camera's namespace (a robot with two cameras).

    ros2 launch interactvlm_ros interactvlm_multi.launch.py cameras:=front,wrist image_topic:=color/image_raw
    ros2 launch interactvlm_ros interactvlm_multi.launch.py \\
        cameras:=front=/front/color/image_raw,wrist=/wrist_cam/image objects:=cup,bottle

``cameras`` is a comma-separated list of ``namespace`` or ``namespace=image_topic`` entries (default
``camera1,camera2``). Camera ``front`` runs the node ``/front/interactvlm``: it reads ``image_topic`` resolved in
its namespace (``color/image_raw`` -> ``/front/color/image_raw``; an absolute topic is used as is) and publishes
``/front/interactvlm/contacts``, ``.../contacts/markers``, ``.../contacts/human_cloud``... Each node loads its
own model (GPU memory per camera).

Every other argument is the one of ``interactvlm.launch.py`` (params_file, transport, model, backend, objects,
camera_frame, node_name, log_level, respawn, respawn_delay) and applies to every camera; ``--show-args`` lists
them. RViz is not started (one RViz per camera: ``ros2 launch interactvlm_ros interactvlm.launch.py`` style
configs differ per robot).
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, LogInfo, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

HERE = Path(__file__).resolve().parent
SINGLE = HERE / "interactvlm.launch.py"  # side by side in the source tree and in share/interactvlm_ros/launch
DEFAULT_CAMERAS = "camera1,camera2"


def _single_arguments():
    """The single-camera launch file's arguments (name, default, doc), read from it so both stay in step."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("interactvlm_single_launch", SINGLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ARGUMENTS


def parse_cameras(text: str) -> list[tuple[str, str]]:
    """``"front,wrist=/wrist/image"`` -> ``[("front", ""), ("wrist", "/wrist/image")]`` (empty topic: the
    ``image_topic`` argument). Raises ValueError for an empty list, an empty or repeated namespace."""
    cameras: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        namespace, _, topic = item.partition("=")
        namespace = namespace.strip().strip("/")
        if not namespace:
            raise ValueError(f"cameras:={text!r}: entry {item!r} has no namespace")
        if namespace in (n for n, _ in cameras):
            raise ValueError(f"cameras:={text!r}: namespace {namespace!r} appears twice")
        cameras.append((namespace, topic.strip()))
    if not cameras:
        raise ValueError(f"cameras:={text!r}: expected comma-separated namespace[=image_topic] entries")
    return cameras


def launch_cameras(context, *args, **kwargs):
    cameras = parse_cameras(LaunchConfiguration("cameras").perform(context))
    default_topic = LaunchConfiguration("image_topic").perform(context).strip()
    actions = [LogInfo(msg="interactvlm: one node per camera: " + ", ".join(f"/{n}" for n, _ in cameras))]
    for namespace, topic in cameras:
        include = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(SINGLE)),
            launch_arguments={"namespace": namespace, "image_topic": topic or default_topic,
                              "use_rviz": "false"}.items())
        actions.append(GroupAction([include], scoped=True))  # per-camera arguments stay in the group
    return actions


def generate_launch_description() -> LaunchDescription:
    actions = [DeclareLaunchArgument("cameras", default_value=DEFAULT_CAMERAS,
                                     description="Comma-separated camera namespaces, each optionally "
                                                 "'namespace=image_topic'; one node per camera")]
    for name, default, doc in _single_arguments():
        if name in ("namespace", "use_rviz"):
            continue
        if name == "image_topic":
            doc = ("Input image topic of every camera, resolved in its namespace (empty: topics.image of the "
                   "parameter file); a camera's own '=topic' wins")
        actions.append(DeclareLaunchArgument(name, default_value=default, description=doc))
    actions.append(OpaqueFunction(function=launch_cameras))
    return LaunchDescription(actions)
