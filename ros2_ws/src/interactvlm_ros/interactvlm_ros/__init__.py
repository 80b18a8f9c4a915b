"""interactvlm_ros: InteractVLM contact estimation for robots (ROS 2 node, CLI and library).

Every sub-package is importable without ROS; only ``interactvlm_ros.transport`` talks to ROS/DDS.
"""

__version__ = "0.1.0"
