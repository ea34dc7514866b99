"""Protobuf encoding of Kafka values, shared by faust agents and confluent-kafka clients.

Decoding is strict: bytes that do not parse, or that parse to a message whose required identity
fields are empty, raise ``DecodeError`` so the consumer dead-letters them with the reason instead
of acting on garbage. Faust is handed raw bytes and decodes with ``ProtoCodec`` explicitly, because
a failed decode inside faust's own serializer is only logged and the record is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError as _ProtobufDecodeError
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


class DecodeError(ValueError):
    """A Kafka value could not be turned into the topic's message type."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class ProtoCodec(Generic[M]):
    """Encodes and strictly decodes one protobuf message type (one type per topic)."""

    def __init__(self, message_type: type[M], required: Sequence[str] = ()) -> None:
        self.message_type = message_type
        self.required = tuple(required)
        fields = message_type.DESCRIPTOR.fields_by_name
        for path in self.required:
            if path.split(".", 1)[0] not in fields:
                raise ValueError(f"{message_type.__name__} has no field {path!r}")

    @property
    def name(self) -> str:
        """The fully qualified protobuf type name, e.g. fraudmesh.v1.CallSetupEvent."""
        return str(self.message_type.DESCRIPTOR.full_name)

    def encode(self, message: M) -> bytes:
        """Serialise a message deterministically (stable bytes for the same content)."""
        if not isinstance(message, self.message_type):
            raise TypeError(f"expected {self.name}, got {type(message).__name__}")
        return message.SerializeToString(deterministic=True)

    def decode(self, data: bytes | None) -> M:
        """Parse bytes into the message type, raising DecodeError with a stable reason code."""
        if data is None or len(data) == 0:
            raise DecodeError("empty_value", f"no bytes for {self.name}")
        message = self.message_type()
        try:
            message.ParseFromString(data)
        except _ProtobufDecodeError as exc:
            raise DecodeError("decode_error", f"not a valid {self.name}: {exc}") from None
        for path in self.required:
            if not _has_value(message, path):
                raise DecodeError("missing_field", f"{self.name}.{path} is empty")
        return message


def _has_value(message: Message, path: str) -> bool:
    current: Message = message
    parts = path.split(".")
    for part in parts[:-1]:
        if not current.HasField(part):
            return False
        current = getattr(current, part)
    value = getattr(current, parts[-1])
    if isinstance(value, Message):
        return current.HasField(parts[-1])
    return bool(value)
