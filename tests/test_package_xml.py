"""Every dependency in the ROS package manifests is a key ``rosdep install`` resolves on Jazzy.

``ROSDEP_KEYS`` was derived from ros/rosdistro at commit 8468e88ccd523427f9131e39d2af0938f1c298b2
(https://github.com/ros/rosdistro): the ROS package names from ``jazzy/distribution.yaml`` (released packages,
the repository that ships each in the comment) and the system keys from ``rosdep/python.yaml`` (each has an
``ubuntu`` entry for noble). Workspace packages (built by colcon next to the manifest) are not rosdep keys.
Adding a dependency means checking its key there and adding it here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "ros2_ws" / "src"
MANIFESTS = sorted(SRC.glob("*/package.xml"))

ROSDEP_KEYS = {
    # jazzy/distribution.yaml: package (repository)
    "ament_cmake",                 # ament_cmake
    "ament_index_python",          # ament_index
    "cv_bridge",                   # vision_opencv
    "diagnostic_msgs",             # common_interfaces
    "geometry_msgs",               # common_interfaces
    "launch",                      # launch
    "launch_ros",                  # launch_ros
    "lifecycle_msgs",              # rcl_interfaces
    "rclpy",                       # rclpy (rclpy.lifecycle is part of it: no rclpy_lifecycle key exists)
    "rosidl_default_generators",   # rosidl_defaults
    "rosidl_default_runtime",      # rosidl_defaults
    "sensor_msgs",                 # common_interfaces
    "std_msgs",                    # common_interfaces
    "tf2_msgs",                    # geometry2
    "visualization_msgs",          # common_interfaces
    # rosdep/python.yaml
    "python3-numpy", "python3-pil", "python3-pytest", "python3-scipy", "python3-tqdm", "python3-yaml",
}
NOT_KEYS = {"rclpy_lifecycle"}  # what issue 20 found: not a package in jazzy/distribution.yaml nor a rosdep key

DEPEND_TAGS = ("depend", "build_depend", "build_export_depend", "buildtool_depend", "buildtool_export_depend",
               "exec_depend", "test_depend", "doc_depend")


def _dependencies(manifest: Path) -> list[str]:
    root = ET.parse(manifest).getroot()
    return [el.text.strip() for tag in DEPEND_TAGS for el in root.findall(tag)]


def test_manifests_found():
    assert {m.parent.name for m in MANIFESTS} >= {"interactvlm_ros", "interactvlm_msgs"}


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: m.parent.name)
def test_every_dependency_is_a_jazzy_rosdep_key_or_a_workspace_package(manifest):
    workspace = {m.parent.name for m in MANIFESTS}
    root = ET.parse(manifest).getroot()
    assert root.get("format") == "3" and root.findtext("name") == manifest.parent.name
    deps = _dependencies(manifest)
    assert deps, f"{manifest} declares no dependencies"
    unknown = sorted(d for d in deps if d not in ROSDEP_KEYS and d not in workspace)
    assert not unknown, (f"{manifest}: {', '.join(unknown)} not a Jazzy rosdep key (check ros/rosdistro "
                         "jazzy/distribution.yaml and rosdep/*.yaml, then add it to ROSDEP_KEYS)")
    assert not NOT_KEYS & set(deps)
