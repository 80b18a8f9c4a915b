"""rosbag2 bag metadata (format version 9, as ``ros2 bag`` Jazzy and rosbags write it) for an MCAP file: the
``metadata.yaml`` of a bag folder and the ``rosbag2`` metadata record inside the MCAP file.

Everything comes from the MCAP channels written so far: topic, type (the schema name), QoS (channel metadata
``offered_qos_profiles``, a YAML string) and type hash (channel metadata ``topic_type_hash``).
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from rosbags.interfaces import Qos
from rosbags.rosbag2.metadata import dump_qos_v9, parse_qos
from ruamel.yaml import YAML

from interactvlm_ros.bag.mcap_writer import ChunkedMcapWriter

VERSION = 9
QOS_KEY = "offered_qos_profiles"
TYPE_HASH_KEY = "topic_type_hash"


def qos_metadata(qos: list[Qos]) -> str:
    """QoS profiles as the YAML string of MCAP channel metadata ``offered_qos_profiles``."""
    return _dump(dump_qos_v9(list(qos))).strip()


def channel_qos(metadata: dict[str, str]) -> list[Qos]:
    """The QoS profiles an MCAP channel's metadata holds (empty when none)."""
    text = metadata.get(QOS_KEY, "")
    return parse_qos(text) if text.strip() else []


def bag_information(writer: ChunkedMcapWriter, file_name: str) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` mapping of a bag whose one storage file is ``file_name``."""
    stats = writer.statistics()
    start = stats.message_start_time if stats.message_count else 0
    duration = max(0, stats.message_end_time - start) if stats.message_count else 0
    topics = []
    for channel in writer.channels.values():
        schema = writer.schemas.get(channel.schema_id)
        topics.append({
            "topic_metadata": {
                "name": channel.topic,
                "type": schema.name if schema is not None else "",
                "serialization_format": channel.message_encoding,
                "offered_qos_profiles": dump_qos_v9(channel_qos(channel.metadata)),
                "type_description_hash": channel.metadata.get(TYPE_HASH_KEY, ""),
            },
            "message_count": stats.channel_message_counts.get(channel.id, 0),
        })
    return {
        "version": VERSION,
        "storage_identifier": "mcap",
        "relative_file_paths": [file_name],
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": stats.message_count,
        "topics_with_message_count": topics,
        "compression_format": "",
        "compression_mode": "",
        "files": [{"path": file_name, "starting_time": {"nanoseconds_since_epoch": start},
                   "duration": {"nanoseconds": duration}, "message_count": stats.message_count}],
        "custom_data": None,
        "ros_distro": "interactvlm_ros",
    }


def metadata_yaml(information: dict[str, Any]) -> str:
    """The text of a bag folder's ``metadata.yaml``."""
    return _dump({"rosbag2_bagfile_information": information})


def mcap_metadata_record(information: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The ``rosbag2`` MCAP metadata record (name -> string map) that ``ros2 bag`` writes into MCAP files."""
    return {"rosbag2": {"serialized_metadata": _dump(information).strip()}}


def _dump(data: Any) -> str:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()
