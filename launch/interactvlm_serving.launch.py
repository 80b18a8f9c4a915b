"""One Triton server and one thin InteractVLM node per camera (docs/serving.md).

    ros2 launch interactvlm_ros interactvlm_serving.launch.py cameras:=front,wrist
    ros2 launch interactvlm_ros interactvlm_serving.launch.py cameras:=front,wrist fallback:=local \\
        serve_backend:=tensorrt grpc_port:=9001

Starts ``interactvlm serve`` (the model, once) and includes ``interactvlm_multi.launch.py`` with the nodes set to
``inference.backend: triton`` on ``127.0.0.1:<grpc_port>``. The nodes need not wait for the server: until it
answers their frames fail (or, with ``fallback:=local``, the local model answers) and they pick it up without a
restart. To serve cameras on other machines, start only the nodes there
(``interactvlm_multi.launch.py params_file:=<a file with inference.backend: triton, inference.triton_url>``) and
the server with ``serve_address:=0.0.0.0``.

Arguments: ``cameras``, ``image_topic``, ``objects``, ``transport``, ``model`` (as ``interactvlm_multi``);
``serve_backend`` (the server's local engine: torch | onnxruntime | tensorrt), ``serve_address``,
``grpc_port``, ``http_port``, ``metrics_port``, ``instances``, ``threads`` (``serve.*``), ``fallback``
(none | local: ``inference.fallback`` of the nodes), ``params_file``.

Not run on the development machine (no ROS 2 there); the same processes were run by hand and by
``tests/serving/test_serving_processes.py``.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

HERE = Path(__file__).resolve().parent
MULTI = HERE / "interactvlm_multi.launch.py"
DEFAULT_PARAMS = HERE.parent / "config" / "interactvlm.yaml"

ARGUMENTS = (
    ("cameras", "camera1,camera2", "Comma-separated camera namespaces, each optionally 'namespace=image_topic'"),
    ("image_topic", "", "Input image topic, resolved in each camera's namespace (empty: topics.image)"),
    ("objects", "", "Comma-separated object names (empty: objects of the parameter file)"),
    ("transport", "auto", "Node transport rclpy | dds | auto"),
    ("model", "", "Model preset or directory the server hosts (empty: model.name)"),
    ("params_file", str(DEFAULT_PARAMS), "ROS 2 parameter file (server and nodes)"),
    ("serve_backend", "onnxruntime", "The server's local engine: torch | onnxruntime | tensorrt"),
    ("serve_address", "127.0.0.1", "Address the server binds (0.0.0.0 to serve other machines)"),
    ("grpc_port", "8001", "Server gRPC port (the nodes' inference.triton_url)"),
    ("http_port", "8000", "Server HTTP port (/v2/health/ready)"),
    ("metrics_port", "8002", "Server Prometheus metrics port"),
    ("instances", "1", "Model instances in the server (serve.instances)"),
    ("threads", "0", "Torch threads of the server (serve.threads; 0 = torch's default)"),
    ("fallback", "none", "What answers while the server does not: none | local (inference.fallback)"),
)


def node_params_file(params_file: str, grpc_port: str, fallback: str) -> str:
    """A copy of ``params_file`` with the nodes' Triton settings (the included launch files take a file)."""
    data = yaml.safe_load(Path(params_file).read_text()) or {}
    section = next(iter(data.values())) if data else {}
    params = section.setdefault("ros__parameters", {}) if isinstance(section, dict) else {}
    if not data:
        data = {"/**": {"ros__parameters": params}}
    params.update({"inference.backend": "triton", "inference.triton_url": f"127.0.0.1:{grpc_port}",
                   "inference.fallback": fallback})
    out = Path(tempfile.mkdtemp(prefix="interactvlm_serving_")) / "nodes.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(out)


def launch_all(context, *args, **kwargs):
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    exe = shutil.which("interactvlm")
    serve = [exe] if exe else [sys.executable, "-m", "interactvlm_ros"]
    serve += ["serve", "--config", arg("params_file"), "--set", f"inference.backend={arg('serve_backend')}"]
    for key, name in (("serve.address", "serve_address"), ("serve.grpc_port", "grpc_port"),
                      ("serve.http_port", "http_port"), ("serve.metrics_port", "metrics_port"),
                      ("serve.instances", "instances"), ("serve.threads", "threads")):
        serve += ["--set", f"{key}={arg(name)}"]
    if arg("model"):
        serve += ["--set", f"model.name={arg('model')}"]
    nodes = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(MULTI)),
        launch_arguments={"cameras": arg("cameras"), "image_topic": arg("image_topic"), "objects": arg("objects"),
                          "transport": arg("transport"), "model": arg("model"),
                          "params_file": node_params_file(arg("params_file"), arg("grpc_port"),
                                                          arg("fallback"))}.items())
    return [ExecuteProcess(cmd=serve, name="interactvlm_serve", output="screen", sigterm_timeout="30",
                           respawn=True, respawn_delay=2.0), nodes]


def generate_launch_description() -> LaunchDescription:
    actions = [DeclareLaunchArgument(n, default_value=d, description=doc) for n, d, doc in ARGUMENTS]
    actions.append(OpaqueFunction(function=launch_all))
    return LaunchDescription(actions)
