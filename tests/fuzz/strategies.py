"""Hypothesis strategies that build any protobuf message of the wire contract from its
descriptor, biased toward the values that reach deep into the runtime (known request ids,
the node's own cells, matrices of consistent or inconsistent shape)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from ric._proto.e2.v1 import common_pb2

_INTS = st.one_of(st.integers(0, 10), st.integers(0, 2**32 - 1))
_STRINGS = st.one_of(
    st.sampled_from(
        [
            "",
            "001-01-11",
            "001-01-12",
            "001-01-99",
            "RRU.PrbUsedDl",
            "RRU.PrbAvailDl",
            "17",
            "1-000001",
        ]
    ),
    st.text(max_size=12),
)
_DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 50.0])
)

Scalar = Callable[[FieldDescriptor], st.SearchStrategy[Any]]


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _DOUBLES
    if t == FieldDescriptor.TYPE_STRING:
        return _STRINGS
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=16)
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None  # an enum field has its enum
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(0, 200))
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    ):
        return st.one_of(_INTS, st.integers(-(2**31), -1))
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.one_of(_INTS, st.integers(0, 2**64 - 1))
    return _INTS


def message(
    descriptor: Descriptor,
    cls: type[Message],
    request_ids: Sequence[tuple[int, int]] = (),
    depth: int = 0,
) -> st.SearchStrategy[Message]:
    """Any message of type ``cls``; ``RicRequestId`` fields often take one of ``request_ids``."""
    if cls is common_pb2.RicRequestId and request_ids:
        known = st.sampled_from(list(request_ids)).map(
            lambda r: common_pb2.RicRequestId(requestor=r[0], instance=r[1])
        )
        return st.one_of(known, known, _plain(descriptor, cls, request_ids, depth))
    return _plain(descriptor, cls, request_ids, depth)


def _plain(
    descriptor: Descriptor, cls: type[Message], request_ids: Sequence[tuple[int, int]], depth: int
) -> st.SearchStrategy[Message]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    oneofs = {f.name: o for o in descriptor.oneofs for f in o.fields}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            sub_cls = _class_of(cls, field)
            if sub_cls is None or depth > 4:
                continue
            sub_type = field.message_type
            assert sub_type is not None  # a message field has its message type
            if sub_type.GetOptions().map_entry:
                continue
            value = message(sub_type, sub_cls, request_ids, depth + 1)
        else:
            value = _scalar(field)
        if field.is_repeated:
            fields[field.name] = st.lists(value, max_size=4 if depth else 6)
        else:
            fields[field.name] = value

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        chosen_oneof = {
            o.name: draw(st.sampled_from([f.name for f in o.fields] + [None]))
            for o in descriptor.oneofs
        }
        for name, strategy in fields.items():
            oneof = oneofs.get(name)
            if oneof is not None and chosen_oneof[oneof.name] != name:
                continue
            if oneof is None and not draw(st.booleans()):
                continue
            value = draw(strategy)
            field = descriptor.fields_by_name[name]
            if field.is_repeated:
                target = getattr(msg, name)
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return build()


def _class_of(parent: type[Message], field: FieldDescriptor) -> type[Message] | None:
    try:
        return type(
            getattr(parent(), field.name).add()
            if field.is_repeated
            else getattr(parent(), field.name)
        )
    except (AttributeError, TypeError):
        return None
