"""Transports: the only part of interactvlm_ros that knows about ROS.

- ``msgs/``: every ROS 2 message type we publish or subscribe as cyclonedds ``IdlStruct`` wire types.
- ``typestore.py``: the rosbags typestore (ROS 2 Jazzy + interactvlm_msgs) used for bags and cross-checks.
- ``typehash.py``: REP-2011 RIHS01 type hashes and the ``typehash=...;`` USER_DATA QoS value.
- ``dds_config.py``: Cyclone DDS configuration (loopback-only for tests).
- ``image_codec.py``, ``contacts.py``, ``markers.py``, ``clouds.py``, ``diagnostics.py``, ``tf.py``: conversions
  between transport-neutral data (numpy, ``ContactResult``) and messages; bad input raises ``MessageError``.
"""
