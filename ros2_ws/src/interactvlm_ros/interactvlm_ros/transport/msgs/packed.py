"""Fast CDR (de)serialization of large arrays for cyclonedds-python ``IdlStruct`` message types.

cyclonedds-python serializes ``sequence[uint8]`` element by element (~35 ms for a 640x480 rgb8 image). The wire
format of a sequence of primitives is just ``uint32 count`` + padding to the element alignment + the elements,
and a sequence of small all-primitive structs (``geometry_msgs/Point``, ``std_msgs/ColorRGBA``) is the same with
the struct's fields interleaved. :func:`pack_sequences` swaps, on a message class, the per-element machines of
such sequences for machines that copy the whole array with numpy. The declared IDL types (and therefore the
XTypes type information and the ROS type) are unchanged, only the Python representation differs:

- ``sequence[uint8|float32|uint32|...]`` fields accept bytes / bytearray / memoryview / numpy arrays / lists and
  deserialize to a 1-D numpy array of that element type (read-only view of the received bytes).
- ``sequence[S]`` with ``S`` a struct of same-typed primitives (Point: 3 float64, ColorRGBA: 4 float32) accept an
  ``[N, k]`` numpy array (or a list of ``S``) and deserialize to an ``[N, k]`` numpy array.
"""

from dataclasses import fields as dataclass_fields
from typing import get_type_hints

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as idl_types
from cyclonedds.idl._machinery import (
    InstanceMachine,
    PlainCdrV2SequenceOfPrimitiveMachine,
    SequenceMachine,
    StructMachine,
)
from cyclonedds.idl._support import Endianness

# IDL primitive -> numpy dtype character (CDR sizes; ``bool`` is one byte).
_NUMPY_CODES = {
    idl_types.int8: "i1", idl_types.uint8: "u1", idl_types.byte: "u1",
    idl_types.int16: "i2", idl_types.uint16: "u2",
    idl_types.int32: "i4", idl_types.uint32: "u4",
    idl_types.int64: "i8", idl_types.uint64: "u8",
    idl_types.float32: "f4", idl_types.float64: "f8",
    bool: "?", float: "f8", int: "i8",
}


def _dtype(code: str, buffer) -> np.dtype:
    order = "<" if buffer.endianness == Endianness.Little else ">"
    return np.dtype(code if code in ("i1", "u1", "?") else order + code)


def _to_array(value, code: str, what: str) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if code != "u1":
            raise TypeError(f"{what}: raw bytes are only accepted for uint8 sequences")
        return np.frombuffer(value, dtype=np.uint8)
    return np.asarray(value)


def _write_block(buffer, arr: np.ndarray, bound: int | None, alignment: int, code: str) -> None:
    """A CDR sequence: ``uint32`` element count (4-aligned), then ``arr`` (first axis = elements) as one block
    aligned to ``alignment``, in the buffer's byte order."""
    if bound is not None and arr.shape[0] > bound:
        raise ValueError(f"sequence of {arr.shape[0]} elements exceeds its bound {bound}")
    buffer.align(4)
    buffer.write("I", 4, int(arr.shape[0]))
    if arr.shape[0]:
        buffer.align(alignment)
        buffer.write_bytes(np.ascontiguousarray(arr, dtype=_dtype(code, buffer)).data.cast("B"))


def _read_block(buffer, alignment: int, code: str, width: int | None = None) -> np.ndarray:
    """The inverse of :func:`_write_block`: a native-order ``[N]`` (or ``[N, width]``) array."""
    buffer.align(4)
    length = buffer.read("I", 4)
    dtype = _dtype(code, buffer)
    shape = (length,) if width is None else (length, width)
    if not length:
        return np.zeros(shape, dtype=dtype.newbyteorder("="))
    buffer.align(alignment)
    arr = np.frombuffer(buffer.read_bytes(length * (width or 1) * dtype.itemsize), dtype=dtype).reshape(shape)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


# struct-module codes used by cyclonedds' primitive machines -> numpy dtype characters.
_STRUCT_TO_NUMPY = {"b": "i1", "B": "u1", "h": "i2", "H": "u2", "i": "i4", "I": "u4", "q": "i8", "Q": "u8",
                    "f": "f4", "d": "f8"}


class PackedPrimitiveSequenceMachine(PlainCdrV2SequenceOfPrimitiveMachine):
    """``sequence<primitive>`` copied as one block: same bytes as the element-wise machine."""

    def __init__(self, original: PlainCdrV2SequenceOfPrimitiveMachine):
        self.code, self.alignment, self.size = original.code, original.alignment, original.size
        self.max_length = original.max_length
        self.np_code = _STRUCT_TO_NUMPY[original.code]

    def serialize(self, buffer, value, serialize_kind=None, key_enabled=None):
        arr = _to_array(value, self.np_code, "sequence")
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        _write_block(buffer, arr, self.max_length, self.alignment, self.np_code)

    def deserialize(self, buffer, deserialize_kind=None, key_enabled=None):
        return _read_block(buffer, self.alignment, self.np_code)

    def default_initialize(self):
        return np.zeros(0, dtype=np.dtype(self.np_code))


class PackedStructSequenceMachine(SequenceMachine):
    """``sequence<S>`` for a struct ``S`` of ``k`` primitives of one type, as an ``[N, k]`` array."""

    def __init__(self, struct_type, member_names, member_type, maxlen=None):
        super().__init__(InstanceMachine(struct_type, False), maxlen=maxlen)
        self.struct_type = struct_type
        self.member_names = member_names
        self.np_code = _NUMPY_CODES[member_type]
        self.member_size = np.dtype(self.np_code).itemsize
        self.width = len(member_names)

    def _as_matrix(self, value) -> np.ndarray:
        if isinstance(value, np.ndarray):
            arr = value
        elif len(value) and isinstance(value[0], self.struct_type):
            arr = np.array([[getattr(v, n) for n in self.member_names] for v in value])
        else:
            arr = np.asarray(value)
        if arr.size == 0:
            return np.zeros((0, self.width))
        if arr.ndim != 2 or arr.shape[1] != self.width:
            raise ValueError(f"sequence of {self.struct_type.__name__} needs an [N, {self.width}] array, "
                             f"got shape {arr.shape}")
        return arr

    def serialize(self, buffer, value, serialize_kind=None, key_enabled=None):
        _write_block(buffer, self._as_matrix(value), self.maxlen, self.member_size, self.np_code)

    def deserialize(self, buffer, deserialize_kind=None, key_enabled=None):
        return _read_block(buffer, self.member_size, self.np_code, self.width)

    def default_initialize(self):
        return np.zeros((0, self.width), dtype=np.dtype(self.np_code))


def _uniform_primitive_struct(struct_type):
    """``(member names, member type)`` when every member of ``struct_type`` has the same primitive type."""
    hints = get_type_hints(struct_type, include_extras=True)
    names = [f.name for f in dataclass_fields(struct_type)]
    kinds = {hints[n] for n in names}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind in _NUMPY_CODES and kind is not bool:
            return names, kind
    return None


def _packed(machine):
    if (isinstance(machine, PlainCdrV2SequenceOfPrimitiveMachine)
            and not isinstance(machine, PackedPrimitiveSequenceMachine) and machine.code in _STRUCT_TO_NUMPY):
        return PackedPrimitiveSequenceMachine(machine)
    if (isinstance(machine, SequenceMachine) and not isinstance(machine, PackedStructSequenceMachine)
            and isinstance(machine.submachine, InstanceMachine)):
        uniform = _uniform_primitive_struct(machine.submachine.type)
        if uniform is not None:
            return PackedStructSequenceMachine(machine.submachine.type, uniform[0], uniform[1], machine.maxlen)
    return machine


def pack_sequences(cls):
    """Class decorator: use the packed machines for every eligible sequence member of ``cls`` (XCDR1 and 2)."""
    if not issubclass(cls, IdlStruct):
        raise TypeError(f"{cls.__name__} is not an IdlStruct")
    idl = cls.__idl__
    idl.populate()
    for machine in (idl.v1_machine, idl.v2_machine):
        if isinstance(machine, StructMachine):
            for name, sub in list(machine.members_machines.items()):
                machine.members_machines[name] = _packed(sub)
    return cls


__all__ = ["PackedPrimitiveSequenceMachine", "PackedStructSequenceMachine", "pack_sequences"]
