"""The event envelope every Kafka record carries (CloudEvents 1.0 attributes + station fields).

Record key = station id, so one station's events stay in order on one partition.
The W3C ``traceparent`` travels in the record headers, not in the envelope.
"""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python


def _new_id() -> str:
    return uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One event: ``id`` is unique, so consumers de-duplicate replays by it."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=_new_id)
    type: str = Field(examples=["ocpp.call.received"])
    source: str = Field(examples=["csms/gateway/gw-1"])
    time: datetime = Field(default_factory=_now)
    station_id: str = Field(examples=["CP-001"])
    ocpp_version: str | None = Field(default=None, examples=["2.0.1"])
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The record value: the same bytes as ``model_dump_json``, in a quarter of the time
        (every station CALL is one; values orjson does not know go through pydantic)."""
        return orjson.dumps(self.__dict__, option=orjson.OPT_UTC_Z, default=to_jsonable_python)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)
