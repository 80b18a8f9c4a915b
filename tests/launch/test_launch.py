"""launch/interactvlm.launch.py with a real ROS 2 install: its arguments, ``ros2 launch`` of the dds transport
with a ROS 2 subscriber, and of the rclpy lifecycle node when the package is colcon-built.

Skipped (with the reason) where launch / rclpy / the ros2 CLI are missing, e.g. in CI.
"""

import importlib.util
import os
import shutil
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

launch = pytest.importorskip("launch", reason="the ROS 2 'launch' package is not importable (no sourced ROS 2)")
pytest.importorskip("launch_ros", reason="launch_ros is not importable (no sourced ROS 2)")

from interactvlm_ros.transport.dds_config import loopback_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / "launch" / "interactvlm.launch.py"
EXPECTED_ARGS = {"image_topic", "params_file", "transport", "model", "backend", "objects", "camera_frame",
                 "namespace", "node_name", "log_level", "use_rviz", "respawn", "respawn_delay"}


def load_launch_module():
    spec = importlib.util.spec_from_file_location("interactvlm_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_declares_the_arguments():
    from launch.actions import DeclareLaunchArgument

    ld = load_launch_module().generate_launch_description()
    names = {a.name for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert EXPECTED_ARGS <= names
    assert Path(load_launch_module().DEFAULT_PARAMS).is_file()
    assert (LAUNCH_FILE.parent / "interactvlm.rviz").is_file()


def ros2_cli() -> str:
    exe = shutil.which("ros2")
    if exe is None:
        pytest.skip("the ros2 command is not on PATH (no sourced ROS 2 install)")
    return exe


def node_pids(launch_pid: int) -> list[int]:
    """The node processes ``ros2 launch`` started (its session): command lines running ``node --transport``
    or ``interactvlm_node``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == launch_pid:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if os.getsid(int(entry.name)) != launch_pid:
                continue
        except (OSError, ProcessLookupError):
            continue
        if b"interactvlm_node" in b" ".join(cmdline) or (b"node" in cmdline and b"--transport" in cmdline):
            pids.append(int(entry.name))
    return pids


def launch_and_check(args: list[str], tmp_path: Path, domain: int, kill_node: bool = False) -> None:
    """``ros2 launch`` the file, publish images from an rclpy peer, expect ContactArray + cloud with the
    image's header, then stop launch with SIGINT and expect a clean exit. With ``kill_node``, SIGKILL the node
    process after its first answer and expect the respawned one to answer again."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable")
    ivm = pytest.importorskip("interactvlm_msgs.msg", reason="interactvlm_msgs is not built/sourced")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, PointCloud2

    from interactvlm_ros.transport.rclpy_node import OUTPUT_QOS

    env = loopback_env(domain_id=domain)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]  # `interactvlm` of this venv
    # the node's process (ROS' own python for `interactvlm_node`) must see this interpreter's packages (torch...)
    env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), *site.getsitepackages()]).strip(os.pathsep)
    log = tmp_path / "launch.log"
    proc = subprocess.Popen([ros2_cli(), "launch", str(LAUNCH_FILE), *args], env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    os.environ["CYCLONEDDS_URI"] = env["CYCLONEDDS_URI"]
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["test"], domain_id=domain)
    peer = rclpy.create_node("launch_test_peer", context=ctx)
    got = {"contacts": [], "cloud": []}
    peer.create_subscription(ivm.ContactArray, "/interactvlm/contacts", got["contacts"].append, OUTPUT_QOS)
    peer.create_subscription(PointCloud2, "/interactvlm/contacts/human_cloud", got["cloud"].append, OUTPUT_QOS)
    pub = peer.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(peer)
    stamp = 1_700_000_000_000_000_000

    def publish_until_answered():
        nonlocal stamp
        got["contacts"].clear()
        end = time.monotonic() + 300
        while time.monotonic() < end and not got["contacts"]:
            if pub.get_subscription_count():
                stamp += 10**8
                msg = Image()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
                msg.header.frame_id = "launch_test_optical_frame"
                msg.height, msg.width, msg.encoding, msg.step = 48, 64, "rgb8", 192
                msg.data = np.full(48 * 64 * 3, 128, np.uint8).tobytes()
                pub.publish(msg)
            executor.spin_once(timeout_sec=0.5)
            assert proc.poll() is None, log.read_text()[-3000:]
        assert got["contacts"], "no ContactArray:\n" + log.read_text()[-3000:]

    try:
        publish_until_answered()
        if kill_node:
            (pid,) = node_pids(proc.pid)
            os.kill(pid, signal.SIGKILL)
            publish_until_answered()  # from the respawned process
            (respawned,) = node_pids(proc.pid)
            assert respawned != pid
        c = got["contacts"][0]
        assert c.header.frame_id == "launch_test_optical_frame"
        assert [x.object_label for x in c.contacts] == ["cup", "bottle"]
        end = time.monotonic() + 30
        while time.monotonic() < end and not any(m.header.stamp == c.header.stamp for m in got["cloud"]):
            executor.spin_once(timeout_sec=0.2)
        assert any(m.header.stamp == c.header.stamp for m in got["cloud"])
    finally:
        executor.shutdown()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert rc == 0, log.read_text()[-3000:]


COMMON = ["image_topic:=/camera/image_raw", "objects:=cup,bottle", "log_level:=info"]


def test_ros2_launch_dds_transport_respawns_a_killed_node(tmp_path):
    launch_and_check(["transport:=dds", "respawn_delay:=0.5", *COMMON], tmp_path, 120 + os.getpid() % 40,
                     kill_node=True)


def test_ros2_launch_rclpy_lifecycle_node(tmp_path):
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        pytest.skip("ament_index_python is not importable")
    try:
        get_package_prefix("interactvlm_ros")
    except PackageNotFoundError:
        pytest.skip("interactvlm_ros is not colcon-built/sourced (needed for launch_ros' LifecycleNode)")
    launch_and_check(["transport:=rclpy", *COMMON], tmp_path, 170 + os.getpid() % 40)


# --- one node per camera -----------------------------------------------------------------------------------
MULTI_LAUNCH_FILE = ROOT / "launch" / "interactvlm_multi.launch.py"


def load_multi_launch_module():
    spec = importlib.util.spec_from_file_location("interactvlm_multi_launch", MULTI_LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_multi_launch_file_declares_the_single_files_arguments_and_parses_cameras():
    from launch.actions import DeclareLaunchArgument

    module = load_multi_launch_module()
    names = {a.name for a in module.generate_launch_description().entities if isinstance(a, DeclareLaunchArgument)}
    assert names == (EXPECTED_ARGS - {"namespace", "use_rviz"}) | {"cameras"}
    assert module.parse_cameras(" front, /wrist=/wrist_cam/image ") == [("front", ""), ("wrist", "/wrist_cam/image")]
    for bad in ("", " , ", "front,front", "=image"):
        with pytest.raises(ValueError):
            module.parse_cameras(bad)


def test_ros2_launch_two_cameras_answer_on_their_own_namespaced_topics(tmp_path):
    """``ros2 launch interactvlm_multi.launch.py cameras:=cam_left,cam_right``: each node reads its own
    namespace's image topic and answers on ``/<camera>/interactvlm/contacts`` with that camera's frames only."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable")
    ivm = pytest.importorskip("interactvlm_msgs.msg", reason="interactvlm_msgs is not built/sourced")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from interactvlm_ros.transport.rclpy_node import OUTPUT_QOS

    transport = "dds"
    try:
        from ament_index_python.packages import get_package_prefix

        get_package_prefix("interactvlm_ros")
        transport = "rclpy"  # the lifecycle node when the package is colcon-built
    except Exception:  # noqa: BLE001 - not built: the dds transport needs no colcon build
        pass
    domain = 210 + os.getpid() % 20
    env = loopback_env(domain_id=domain)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), *site.getsitepackages()]).strip(os.pathsep)
    cameras = {"cam_left": 1_700_000_000_000_000_000, "cam_right": 1_800_000_000_000_000_000}
    log = tmp_path / "launch.log"
    proc = subprocess.Popen([ros2_cli(), "launch", str(MULTI_LAUNCH_FILE), f"cameras:={','.join(cameras)}",
                             "image_topic:=camera/image_raw", "objects:=cup", f"transport:={transport}"],
                            env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    os.environ["CYCLONEDDS_URI"] = env["CYCLONEDDS_URI"]
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["test"], domain_id=domain)
    peer = rclpy.create_node("multi_launch_test_peer", context=ctx)
    got = {ns: [] for ns in cameras}
    pubs = {}
    for ns in cameras:
        peer.create_subscription(ivm.ContactArray, f"/{ns}/interactvlm/contacts", got[ns].append, OUTPUT_QOS)
        pubs[ns] = peer.create_publisher(Image, f"/{ns}/camera/image_raw", qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(peer)
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end and not all(got.values()):
            for ns, pub in pubs.items():
                if pub.get_subscription_count() and not got[ns]:
                    cameras[ns] += 10**8
                    msg = Image()
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(cameras[ns], 10**9)
                    msg.header.frame_id = f"{ns}_optical_frame"
                    msg.height, msg.width, msg.encoding, msg.step = 48, 64, "rgb8", 192
                    msg.data = np.full(48 * 64 * 3, 128, np.uint8).tobytes()
                    pub.publish(msg)
            executor.spin_once(timeout_sec=0.5)
            assert proc.poll() is None, log.read_text()[-3000:]
        assert all(got.values()), f"no ContactArray from {[ns for ns in got if not got[ns]]}:\n" + \
            log.read_text()[-3000:]
        for ns, msgs in got.items():
            assert {m.header.frame_id for m in msgs} == {f"{ns}_optical_frame"}
            assert [c.object_label for c in msgs[0].contacts] == ["cup"]
        text = log.read_text()
        for ns in cameras:
            assert f"/{ns}/camera/image_raw -> /{ns}/interactvlm/contacts" in text or transport == "dds", text[-3000:]
    finally:
        executor.shutdown()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert rc == 0, log.read_text()[-3000:]
