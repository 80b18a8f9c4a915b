"""The node's logic without any ROS import: inputs, time sync, latest-frame queue, worker, outputs,
diagnostics. Transports (``interactvlm_ros.transport``) only move messages in and out."""
