"""What every event's ``data`` model shares: tolerant reading, fields left out when unset."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

# An OCPP payload as the station sent it (valid against its official JSON schema): its
# shape is the OCPP specification's, per version and action, not ours.
JsonObject = dict[str, Any]


def ocpp_time(value: datetime) -> str:
    """A datetime as OCPP writes it (UTC, milliseconds, ``Z``)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Times on the wire: OCPP's own form (``2025-01-01T10:00:00.000Z``), or ISO 8601 as Python
# writes it (``2025-01-01T10:00:00+00:00``) where the events always carried that form.
OcppTime = Annotated[AwareDatetime, PlainSerializer(ocpp_time, return_type=str)]
IsoTime = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str)]


class EventData(BaseModel):
    """The ``data`` of one event type.

    Reading ignores fields this code does not know: a minor version may add them
    (docs/integrators.md "Versioning policy").
    """

    model_config = ConfigDict(frozen=True, extra="ignore")


class SparseEventData(EventData):
    """Event data whose fields named in ``omitted_when_none`` are left out of the record
    rather than written as null (the contract has them optional, not nullable)."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_unset(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        serialized = handler(self)
        if isinstance(serialized, dict):
            for name in self.omitted_when_none:
                if name in serialized and serialized[name] is None:
                    del serialized[name]
        return serialized
