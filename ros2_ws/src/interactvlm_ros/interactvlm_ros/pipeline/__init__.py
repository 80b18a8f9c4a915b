"""The ROS-agnostic pipeline: image (+ camera info, depth, object queries) → contacts (+ reconstruction)."""
