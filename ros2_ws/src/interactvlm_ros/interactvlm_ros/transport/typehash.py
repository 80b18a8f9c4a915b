"""REP-2011 type hashes (``RIHS01_<sha256>``) computed from ``.msg`` definitions, and the ``typehash=...;``
USER_DATA value ROS 2 Iron/Jazzy endpoints advertise (without it ROS logs "Failed to parse type hash").

The hash is the sha256 of a canonical JSON rendering of the type description: the type's fields (name, type id,
capacity, string capacity, nested type name), followed by every type it references (transitively), sorted by name
— the structure of ``type_description_interfaces/TypeDescription`` without default values, serialised with
``", "`` / ``": "`` separators, ASCII only, keys in declaration order.

Definitions come from ``.msg`` text (our package's files, or the concatenated ``MSG:`` format that MCAP files and
``ros2 interface show --all-comments`` use); standard ROS types are read from the rosbags Jazzy typestore.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass

RIHS01_PREFIX = "RIHS01_"

# type_description_interfaces/msg/FieldType.msg ids of the scalar types (.msg name -> id). ``char`` is an alias of
# uint8 in ROS 2 .msg files and ``byte`` is IDL ``octet``.
_SCALAR_IDS = {
    "int8": 2, "uint8": 3, "char": 3, "int16": 4, "uint16": 5, "int32": 6, "uint32": 7, "int64": 8, "uint64": 9,
    "float32": 10, "float64": 11, "bool": 15, "byte": 16, "string": 17, "wstring": 18,
}
_NESTED_ID = 1
_BOUNDED_STRING_ID = {"string": 21, "wstring": 22}
_ARRAY_OFFSET, _BOUNDED_SEQUENCE_OFFSET, _UNBOUNDED_SEQUENCE_OFFSET = 48, 96, 144

_SEPARATOR = re.compile(r"^={10,}\s*$", re.M)
_FIELD_TYPE = re.compile(r"^(?P<base>[A-Za-z_][\w/]*)(?:<=(?P<strbound>\d+))?(?:\[(?P<arr><=)?(?P<size>\d*)\])?$")
_CONSTANT = re.compile(r"^[A-Za-z_]\w*\s*=")


class TypeHashError(ValueError):
    """A .msg definition could not be parsed or a referenced type is unknown."""


@dataclass(frozen=True)
class FieldDef:
    """One field: ``base`` is a scalar name or a full nested type name (``pkg/msg/Type``)."""

    name: str
    base: str
    nested: bool
    string_bound: int = 0
    array: str = ""  # "" scalar, "array", "bounded", "unbounded"
    size: int = 0

    def description(self) -> dict:
        if self.nested:
            type_id = _NESTED_ID
        elif self.string_bound:
            type_id = _BOUNDED_STRING_ID[self.base]
        else:
            type_id = _SCALAR_IDS[self.base]
        type_id += {"": 0, "array": _ARRAY_OFFSET, "bounded": _BOUNDED_SEQUENCE_OFFSET,
                    "unbounded": _UNBOUNDED_SEQUENCE_OFFSET}[self.array]
        return {
            "name": self.name,
            "type": {
                "type_id": type_id,
                "capacity": self.size if self.array in ("array", "bounded") else 0,
                "string_capacity": self.string_bound,
                "nested_type_name": self.base if self.nested else "",
            },
        }


def _full_name(name: str, package: str) -> str:
    if name == "Header":
        return "std_msgs/msg/Header"
    parts = name.split("/")
    if len(parts) == 1:
        return f"{package}/msg/{name}"
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3:
        return name
    raise TypeHashError(f"bad type name {name!r}")


def parse_msg(text: str, type_name: str) -> dict[str, list[FieldDef]]:
    """Parse ``.msg`` text (optionally with ``===``/``MSG: pkg/Type`` sections) -> ``{type name: fields}``."""
    sections = _SEPARATOR.split(text)
    out: dict[str, list[FieldDef]] = {}
    for index, section in enumerate(sections):
        lines = section.splitlines()
        name = type_name
        if index > 0:
            header = next((ln.strip() for ln in lines if ln.strip()), "")
            if not header.startswith("MSG:"):
                raise TypeHashError(f"section {index} of {type_name} does not start with 'MSG: pkg/Type'")
            name = _full_name(header[4:].strip(), type_name.split("/")[0])
            lines = lines[lines.index(next(ln for ln in lines if ln.strip())) + 1:]
        name = _full_name(name, name.split("/")[0])
        package = name.split("/")[0]
        fields = []
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise TypeHashError(f"{name}: cannot parse line {raw.strip()!r}")
            type_token, rest = parts
            if _CONSTANT.match(rest):
                continue
            field_name = rest.split()[0]
            m = _FIELD_TYPE.match(type_token)
            if not m:
                raise TypeHashError(f"{name}: bad field type {type_token!r} in {raw.strip()!r}")
            base = m.group("base")
            nested = base not in _SCALAR_IDS
            if nested:
                base = _full_name(base, package)
            if m.group("strbound") and base not in _BOUNDED_STRING_ID:
                raise TypeHashError(f"{name}: only strings can be bounded ({type_token!r})")
            if m.group("arr") is None and m.group("size") is None:
                array, size = "", 0
            elif m.group("arr"):
                array, size = "bounded", int(m.group("size"))
            elif m.group("size"):
                array, size = "array", int(m.group("size"))
            else:
                array, size = "unbounded", 0
            fields.append(FieldDef(field_name, base, nested, int(m.group("strbound") or 0), array, size))
        if not fields:
            # rosidl adds this member to empty structures
            fields.append(FieldDef("structure_needs_at_least_one_member", "uint8", False))
        out[name] = fields
    return out


class TypeLibrary:
    """Message definitions by full type name, with type descriptions and RIHS01 hashes."""

    def __init__(self) -> None:
        self.types: dict[str, list[FieldDef]] = {}

    def add_msg(self, type_name: str, text: str) -> None:
        self.types.update(parse_msg(text, type_name))

    def type_description(self, type_name: str) -> dict:
        """``{"type_description": ..., "referenced_type_descriptions": [...]}`` (no default values)."""
        if type_name not in self.types:
            raise TypeHashError(f"unknown message type {type_name!r}")
        seen: set[str] = set()
        queue = [f.base for f in self.types[type_name] if f.nested]
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            if name not in self.types:
                raise TypeHashError(f"{type_name} references unknown type {name!r}")
            seen.add(name)
            queue.extend(f.base for f in self.types[name] if f.nested)
        return {
            "type_description": self._individual(type_name),
            "referenced_type_descriptions": [self._individual(n) for n in sorted(seen)],
        }

    def _individual(self, name: str) -> dict:
        return {"type_name": name, "fields": [f.description() for f in self.types[name]]}

    def type_hash(self, type_name: str) -> str:
        text = json.dumps(self.type_description(type_name), ensure_ascii=True, allow_nan=False,
                          separators=(", ", ": "), sort_keys=False)
        return RIHS01_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def default_library() -> TypeLibrary:
    """interactvlm_msgs from its .msg files + the standard types of every wire type we use (rosbags' Jazzy defs)."""
    from interactvlm_ros.transport.msgs import MESSAGE_TYPES
    from interactvlm_ros.transport.typestore import msg_texts, typestore

    library = TypeLibrary()
    store = typestore()
    for name in MESSAGE_TYPES:
        if not name.startswith("interactvlm_msgs/"):
            library.add_msg(name, store.generate_msgdef(name, ros_version=2)[0])
    for name, text in msg_texts().items():
        library.add_msg(name, text)
    return library


def type_hash(type_name: str) -> str:
    """RIHS01 hash of a ROS type (``sensor_msgs/msg/Image``) or an ``IdlStruct`` wire class."""
    if not isinstance(type_name, str):
        from interactvlm_ros.transport.msgs import ros_type_name
        type_name = ros_type_name(type_name)
    library = default_library()
    if type_name not in library.types:
        # any other standard Jazzy type: take its definition from the rosbags typestore on first use
        from interactvlm_ros.transport.typestore import typestore

        store = typestore()
        if type_name not in store.fielddefs:
            raise TypeHashError(f"unknown message type {type_name!r}")
        library.add_msg(type_name, store.generate_msgdef(type_name, ros_version=2)[0])
    return library.type_hash(type_name)


def user_data(type_name) -> bytes:
    """The USER_DATA QoS value ROS 2 endpoints carry: ``b"typehash=RIHS01_<hex>;"``."""
    return f"typehash={type_hash(type_name)};".encode("ascii")


def typehash_policy(type_name):
    """cyclonedds ``Policy.Userdata`` with the type hash, to add to a reader's or writer's ``Qos``."""
    from cyclonedds.qos import Policy

    return Policy.Userdata(data=user_data(type_name))


def parse_user_data(data: bytes) -> str | None:
    """The RIHS01 hash in a USER_DATA value (``key=value;`` pairs), or None."""
    for item in bytes(data).decode("ascii", "replace").split(";"):
        key, _, value = item.partition("=")
        if key.strip() == "typehash" and value.startswith(RIHS01_PREFIX):
            return value
    return None
