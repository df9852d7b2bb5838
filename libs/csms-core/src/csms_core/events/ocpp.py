"""The gateway's events: ``ocpp.inbound``, ``ocpp.connections``, ``ocpp.command-results``,
``ocpp.refusals``.

They carry OCPP as the station spoke it (the payload's shape is its version's);
the ``csms.*`` domain events are the version-neutral ones.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import Field

from csms_core.envelope import EncodedEvent, Event, new_event_id
from csms_core.events.data import EventData, JsonObject, OcppTime, ocpp_time
from csms_core.router.base import CommandOutcome

Subprotocol = Literal["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]


class StationConnection(EventData):
    """Which gateway connection an event comes from (answers and commands are fenced by it)."""

    gateway_id: str = Field(description="The gateway that holds the connection.")
    connection_id: str = Field(description="New for every connection (fences replies).")


class InboundCall(StationConnection):
    """A station's CALL (or 2.1 SEND), schema-validated, stored before it was answered."""

    action: str = Field(examples=["BootNotification"])
    message_id: str = Field(description="The OCPP-J message id the station chose.")
    payload: JsonObject = Field(description="The OCPP payload exactly as the station sent it.")
    received_at: OcppTime = Field(description="When the gateway read the frame.")
    owner: str = Field(
        examples=["sessions"],
        description="Who decides the answer: a service, `gateway` (itself) or `nobody`.",
    )
    contributors: list[str] = Field(
        default_factory=list,
        examples=[["security"]],
        description="The services that add fields to the answer (docs/architecture.md).",
    )


class OcppCall(Event[InboundCall]):
    type: Literal["ocpp.call"] = "ocpp.call"


class OcppSend(Event[InboundCall]):
    """An OCPP 2.1 SEND: like a CALL, but never answered."""

    type: Literal["ocpp.send"] = "ocpp.send"


def encode_inbound(
    kind: type[OcppCall] | type[OcppSend],
    *,
    source: str,
    station_id: str,
    ocpp_version: str,
    gateway_id: str,
    connection_id: str,
    action: str,
    message_id: str,
    payload: JsonObject,
    received_at: datetime,
    owner: str,
    contributors: Sequence[str] = (),
    id: str | None = None,
    time: datetime | None = None,
) -> EncodedEvent[OcppCall | OcppSend]:
    """The record bytes of a CALL or SEND, written by orjson straight from the fields: the
    same bytes as ``kind(..., data=InboundCall(...)).to_bytes()`` (tested), without building
    the models, once per station frame."""
    record = {
        "specversion": "1.0",
        "id": id or new_event_id(),
        "type": _INBOUND_TYPES[kind],
        "source": source,
        "time": time or datetime.now(UTC),
        "station_id": station_id,
        "ocpp_version": ocpp_version,
        "datacontenttype": "application/json",
        "data": {
            "gateway_id": gateway_id,
            "connection_id": connection_id,
            "action": action,
            "message_id": message_id,
            "payload": payload,
            "received_at": ocpp_time(received_at),
            "owner": owner,
            "contributors": list(contributors),
        },
    }
    return EncodedEvent(station_id, orjson.dumps(record, option=orjson.OPT_UTC_Z))


_INBOUND_TYPES: dict[type[Event[InboundCall]], str] = {
    OcppCall: "ocpp.call",
    OcppSend: "ocpp.send",
}


class ConnectionOpenedData(StationConnection):
    subprotocol: Subprotocol
    security_profile: int = Field(ge=0, le=3, description="OCPP security profile 0-3.")
    remote_address: str


class ConnectionOpened(Event[ConnectionOpenedData]):
    type: Literal["ocpp.connection.opened"] = "ocpp.connection.opened"


class ConnectionClosedData(StationConnection):
    subprotocol: Subprotocol
    close_code: int | None = Field(description="The WebSocket close code; null if none came.")
    reason: str


class ConnectionClosed(Event[ConnectionClosedData]):
    type: Literal["ocpp.connection.closed"] = "ocpp.connection.closed"


RefusalReason = Literal["auth", "security_profile", "certificate", "unknown_station", "flooding"]


class ConnectionRefusedData(EventData):
    """A station a gateway refused (a security event): never a credential in it."""

    gateway_id: str
    reason: RefusalReason = Field(
        description="auth: no or a wrong password; security_profile: below the gateway's or "
        "the station's profile; certificate: a client certificate for another station; "
        "unknown_station: the policy refuses unknown ids; flooding: cut off for CALLs over "
        "the rate limit."
    )
    status: int = Field(description="The HTTP status of the upgrade (401, 403, 404) or 1008.")
    detail: str = Field(description="What the station was told.")
    remote_address: str
    offered_profile: int | None = Field(default=None, ge=0, le=3)
    required_profile: int | None = Field(default=None, ge=0, le=3)
    repeated: int = Field(
        default=0, ge=0, description="Refusals of this station and reason since the last one."
    )


class ConnectionRefused(Event[ConnectionRefusedData]):
    type: Literal["ocpp.connection.refused"] = "ocpp.connection.refused"


class CommandRequest(EventData):
    action: str
    payload: JsonObject


class CommandResultData(EventData):
    """The outcome of a CSMS-initiated call, with the request it answers."""

    command_id: str
    station_id: str
    action: str
    outcome: CommandOutcome
    payload: JsonObject | None = None
    error_code: str | None = None
    error_description: str = ""
    duration_ms: float = Field(default=0.0, ge=0)
    request: CommandRequest
    gateway_id: str
    connection_id: str


class CommandResultEvent(Event[CommandResultData]):
    type: Literal["ocpp.command.result"] = "ocpp.command.result"
