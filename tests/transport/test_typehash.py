"""REP-2011 RIHS01 type hashes from .msg definitions."""

import json

import pytest

from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.typehash import (
    TypeHashError,
    TypeLibrary,
    default_library,
    parse_msg,
    parse_user_data,
    type_hash,
    typehash_policy,
    user_data,
)
from interactvlm_ros.transport.typestore import typestore

# From a ROS 2 Jazzy build (share/<pkg>/msg/<Type>.json, rosidl_generator_type_description) — the same values
# public sources quote for String, Header, Image...; interactvlm_msgs ones guard the .msg files' field layout.
PUBLISHED = {
    "std_msgs/msg/Header": "RIHS01_f49fb3ae2cf070f793645ff749683ac6b06203e41c891e17701b1cb597ce6a01",
    "std_msgs/msg/String": "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18",
    "sensor_msgs/msg/Image": "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47",
    "sensor_msgs/msg/CameraInfo": "RIHS01_b3dfd68ff46c9d56c80fd3bd4ed22c7a4ddce8c8348f2f59c299e73118e7e275",
    "sensor_msgs/msg/PointCloud2": "RIHS01_9198cabf7da3796ae6fe19c4cb3bdd3525492988c70522628af5daa124bae2b5",
    "sensor_msgs/msg/PointField": "RIHS01_5c6a4750728c2bcfbbf7037225b20b02d4429634732146b742dee1726637ef01",
    "sensor_msgs/msg/CompressedImage": "RIHS01_15640771531571185e2efc8a100baf923961a4d15d5569652e6cb6691e8e371a",
    "visualization_msgs/msg/MarkerArray": "RIHS01_86cb8800b6fb05b5eff1abd7a56f62a5641d3ae9a1c29e78e67e704f1d067dcf",
    "visualization_msgs/msg/Marker": "RIHS01_45b13ccf791f225962bf74e746f9644518855d783a6f42ba0cc14fde2b4f3ce0",
    "diagnostic_msgs/msg/DiagnosticArray": "RIHS01_5a8a36efb05fb25070fa0fb3810290c0e6cd4862b54a8fb975a1ee8dc55a333e",
    "tf2_msgs/msg/TFMessage": "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087",
    "geometry_msgs/msg/Point": "RIHS01_6963084842a9b04494d6b2941d11444708d892da2f4b09843b9c43f42a7f6881",
    "geometry_msgs/msg/TransformStamped": "RIHS01_0a241f87d04668d94099cbb5ba11691d5ad32c2f29682e4eb5653424bd275206",
    "geometry_msgs/msg/PoseStamped": "RIHS01_10f3786d7d40fd2b54367835614bff85d4ad3b5dab62bf8bca0cc232d73b4cd8",
    "rosgraph_msgs/msg/Clock": "RIHS01_692f7a66e93a3c83e71765d033b60349ba68023a8c689a79e48078bcb5c58564",
    "builtin_interfaces/msg/Time": "RIHS01_b106235e25a4c5ed35098aa0a61a3ee9c9b18d197f398b0e4206cea9acf9c197",
    "interactvlm_msgs/msg/Contact": "RIHS01_2b35901e272b60d8261fed65b50305a3b2bdf3586c49336fa5050d91d9b532ed",
    "interactvlm_msgs/msg/ContactArray": "RIHS01_dec45dbf2386c164dad1a0d399ebf14f06f432a137d2cf3e4b87a4e8b83c4cbd",
    "interactvlm_msgs/msg/MeshTopology": "RIHS01_d016c269c6212d3cbb84fe6e3e58c0f88b54d47cb91014b93f9adba867c4c3ff",
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_hashes(name):
    assert type_hash(name) == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(wire.MESSAGE_TYPES))
def test_matches_rosbags_independent_implementation(name):
    assert type_hash(name) == typestore().hash_rihs01(name)


def test_class_argument_and_user_data():
    assert type_hash(wire.Image) == PUBLISHED["sensor_msgs/msg/Image"]
    data = user_data(wire.String)
    assert data == f"typehash={PUBLISHED['std_msgs/msg/String']};".encode()
    assert len(data) == 81  # "typehash=" + 71 + ";"
    assert parse_user_data(b"foo=bar;" + data) == PUBLISHED["std_msgs/msg/String"]
    assert parse_user_data(b"") is None
    assert typehash_policy(wire.String).data == data


def test_type_description_structure():
    desc = default_library().type_description("std_msgs/msg/Header")
    assert desc["type_description"]["type_name"] == "std_msgs/msg/Header"
    assert [r["type_name"] for r in desc["referenced_type_descriptions"]] == ["builtin_interfaces/msg/Time"]
    stamp = desc["type_description"]["fields"][0]
    assert stamp == {"name": "stamp", "type": {"type_id": 1, "capacity": 0, "string_capacity": 0,
                                               "nested_type_name": "builtin_interfaces/msg/Time"}}
    json.dumps(desc)  # plain JSON


def test_parser_handles_arrays_bounds_constants_and_comments():
    text = """# comment
int32 A=3   # constant
string<=10 name  # bounded
uint8[4] fixed
float32[<=5] bounded "default is ignored"
Header header
byte b
char c
Other[] others
"""
    lib = TypeLibrary()
    lib.add_msg("pkg/msg/T", text)
    lib.add_msg("pkg/msg/Other", "")  # empty message -> rosidl's dummy member
    lib.add_msg("std_msgs/msg/Header", typestore().generate_msgdef("std_msgs/msg/Header", ros_version=2)[0])
    fields = {f["name"]: f["type"] for f in lib.type_description("pkg/msg/T")["type_description"]["fields"]}
    assert "A" not in fields
    assert fields["name"]["type_id"] == 21 and fields["name"]["string_capacity"] == 10
    assert fields["fixed"]["type_id"] == 3 + 48 and fields["fixed"]["capacity"] == 4
    assert fields["bounded"]["type_id"] == 10 + 96 and fields["bounded"]["capacity"] == 5
    assert fields["b"]["type_id"] == 16 and fields["c"]["type_id"] == 3
    assert fields["others"] == {"type_id": 145, "capacity": 0, "string_capacity": 0,
                                "nested_type_name": "pkg/msg/Other"}
    other = lib.type_description("pkg/msg/Other")["type_description"]["fields"]
    assert other[0]["name"] == "structure_needs_at_least_one_member"


def test_errors_name_the_problem():
    with pytest.raises(TypeHashError, match="unknown message type 'nope_msgs/msg/X'"):
        type_hash("nope_msgs/msg/X")
    with pytest.raises(TypeHashError, match="bad field type"):
        parse_msg("int32[x] a\n", "pkg/msg/T")
    lib = TypeLibrary()
    lib.add_msg("pkg/msg/T", "Missing m\n")
    with pytest.raises(TypeHashError, match="unknown type 'pkg/msg/Missing'"):
        lib.type_hash("pkg/msg/T")
    with pytest.raises(TypeHashError, match="unknown message type"):
        lib.type_hash("pkg/msg/Nope")
