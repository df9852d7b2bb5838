"""The events a gateway publishes (topics ``ocpp.connections``, ``ocpp.inbound``,
``ocpp.command-results``; documented in docs/asyncapi.yaml)."""

from dataclasses import dataclass
from typing import Any

from csms_core.bus import Bus
from csms_core.envelope import Envelope
from csms_core.router import CommandResult, StationCommand
from csms_gateway.metrics import GatewayMetrics
from csms_ocpp.actions import Owner
from csms_ocpp.frames import Call, Send
from csms_ocpp.versions import OcppVersion

CONNECTION_OPENED = "ocpp.connection.opened"
CONNECTION_CLOSED = "ocpp.connection.closed"
CALL_RECEIVED = "ocpp.call"
SEND_RECEIVED = "ocpp.send"
COMMAND_RESULT = "ocpp.command.result"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One station connection on one gateway, as events and logs name it."""

    gateway_id: str
    connection_id: str
    station_id: str
    version: OcppVersion
    security_profile: int
    lenient: bool
    remote_address: str

    @property
    def log(self) -> dict[str, str]:
        """``extra=`` for log records about this connection."""
        return {"station_id": self.station_id, "connection_id": self.connection_id}


def _envelope(info: ConnectionInfo, event_type: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        type=event_type,
        source=f"csms/gateway/{info.gateway_id}",
        station_id=info.station_id,
        ocpp_version=info.version.number,
        data={"gateway_id": info.gateway_id, "connection_id": info.connection_id, **data},
    )


def connection_opened(info: ConnectionInfo) -> Envelope:
    return _envelope(
        info,
        CONNECTION_OPENED,
        {
            "subprotocol": info.version.value,
            "security_profile": info.security_profile,
            "remote_address": info.remote_address,
        },
    )


def connection_closed(info: ConnectionInfo, close_code: int | None, reason: str) -> Envelope:
    return _envelope(
        info,
        CONNECTION_CLOSED,
        {"subprotocol": info.version.value, "close_code": close_code, "reason": reason},
    )


def call_received(
    info: ConnectionInfo, call: Call | Send, owner: Owner, received_at: str
) -> Envelope:
    """A station CALL (or 2.1 SEND) as received and validated."""
    return _envelope(
        info,
        SEND_RECEIVED if isinstance(call, Send) else CALL_RECEIVED,
        {
            "action": call.action,
            "message_id": call.message_id,
            "payload": call.payload,
            "received_at": received_at,
            "owner": owner.value,
        },
    )


def command_result(
    info: ConnectionInfo | None, command: StationCommand, result: CommandResult, gateway_id: str
) -> Envelope:
    """The outcome of a CSMS-initiated call, with the request it answers."""
    data = {
        **result.model_dump(mode="json", exclude={"kind", "traceparent"}),
        "request": {"action": command.action, "payload": command.payload},
        "gateway_id": gateway_id,
        "connection_id": command.connection_id,
    }
    return Envelope(
        type=COMMAND_RESULT,
        source=f"csms/gateway/{gateway_id}",
        station_id=command.station_id,
        ocpp_version=info.version.number if info is not None else None,
        data=data,
    )


class EventPublisher:
    """Publishes events and measures how long each takes to become durable."""

    def __init__(self, bus: Bus, metrics: GatewayMetrics) -> None:
        self._bus = bus
        self._metrics = metrics

    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Return once the event is durable; raises ``PublishError`` otherwise."""
        with self._metrics.publish_timer(topic).time():
            await self._bus.publish(topic, envelope)
