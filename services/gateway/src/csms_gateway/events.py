"""The events a gateway publishes (topics ``ocpp.connections``, ``ocpp.inbound``,
``ocpp.command-results``; models in ``csms_core.events``)."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import Any, TypeVar

from csms_core.bus import Bus, Outgoing, PublishError
from csms_core.bus.base import AppendsNow
from csms_core.bus.producers import PRODUCER_ERRORS
from csms_core.calls import Routing
from csms_core.envelope import EncodedEvent, Event
from csms_core.events import (
    CommandRequest,
    CommandResultData,
    CommandResultEvent,
    ConnectionClosed,
    ConnectionClosedData,
    ConnectionOpened,
    ConnectionOpenedData,
    ConnectionRefused,
    ConnectionRefusedData,
    OcppCall,
    OcppSend,
    Topic,
)
from csms_core.events.ocpp import encode_inbound
from csms_core.router import CommandResult, StationCommand
from csms_gateway.admission import Refusal
from csms_gateway.metrics import GatewayMetrics
from csms_ocpp.frames import Call, Send
from csms_ocpp.secrets import redact
from csms_ocpp.versions import OcppVersion

E = TypeVar("E", bound=Event[Any])


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

    @property
    def source(self) -> str:
        return f"csms/gateway/{self.gateway_id}"


def connection_opened(info: ConnectionInfo) -> ConnectionOpened:
    return ConnectionOpened(
        source=info.source,
        station_id=info.station_id,
        ocpp_version=info.version.number,
        data=ConnectionOpenedData(
            gateway_id=info.gateway_id,
            connection_id=info.connection_id,
            subprotocol=info.version.value,
            security_profile=info.security_profile,
            remote_address=info.remote_address,
        ),
    )


def connection_closed(
    info: ConnectionInfo, close_code: int | None, reason: str
) -> ConnectionClosed:
    return ConnectionClosed(
        source=info.source,
        station_id=info.station_id,
        ocpp_version=info.version.number,
        data=ConnectionClosedData(
            gateway_id=info.gateway_id,
            connection_id=info.connection_id,
            subprotocol=info.version.value,
            close_code=close_code,
            reason=reason,
        ),
    )


def call_received(
    info: ConnectionInfo, call: Call | Send, routing: Routing, received_at: datetime
) -> EncodedEvent[OcppCall | OcppSend]:
    """A station CALL (or 2.1 SEND) as received and validated (one per frame: written by
    ``encode_inbound``, not by building the model)."""
    return encode_inbound(
        OcppSend if isinstance(call, Send) else OcppCall,
        source=info.source,
        station_id=info.station_id,
        ocpp_version=info.version.number,
        gateway_id=info.gateway_id,
        connection_id=info.connection_id,
        action=call.action,
        message_id=call.message_id,
        payload=call.payload,
        received_at=received_at,
        owner=routing.owner,
        contributors=routing.contributors,
    )


def command_result(
    info: ConnectionInfo | None, command: StationCommand, result: CommandResult, gateway_id: str
) -> CommandResultEvent:
    """The outcome of a CSMS-initiated call, with the request it answers."""
    return CommandResultEvent(
        source=f"csms/gateway/{gateway_id}",
        station_id=command.station_id,
        ocpp_version=info.version.number if info is not None else None,
        data=CommandResultData(
            command_id=result.command_id,
            station_id=result.station_id,
            action=result.action,
            outcome=result.outcome,
            payload=result.payload,
            error_code=result.error_code,
            error_description=result.error_description,
            duration_ms=result.duration_ms,
            # A credential sent to the station (A01/A02) never reaches the topic.
            request=CommandRequest(
                action=command.action, payload=redact(command.action, command.payload)
            ),
            gateway_id=gateway_id,
            connection_id=command.connection_id,
        ),
    )


def connection_refused(gateway_id: str, refusal: Refusal) -> ConnectionRefused:
    """A station refused at the handshake, or cut off for flooding (a security event)."""
    return ConnectionRefused(
        source=f"csms/gateway/{gateway_id}",
        station_id=refusal.station_id,
        ocpp_version=refusal.ocpp_version,
        data=ConnectionRefusedData(
            gateway_id=gateway_id,
            reason=refusal.reason.value,
            status=refusal.status,
            detail=refusal.detail,
            remote_address=refusal.remote_address,
            offered_profile=refusal.offered_profile,
            required_profile=refusal.required_profile,
            repeated=refusal.repeated,
        ),
    )


class EventPublisher:
    """Publishes events and measures how long each takes to become durable."""

    def __init__(self, bus: Bus, metrics: GatewayMetrics) -> None:
        self._bus = bus
        self._appends_now = bus if isinstance(bus, AppendsNow) else None
        self._metrics = metrics

    async def publish(
        self,
        topic: Topic[E],
        event: E | EncodedEvent[E],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Return once the event is durable; raises ``PublishError`` otherwise. ``headers``:
        the trace headers it carries (default: the current context's)."""
        started = perf_counter()
        try:
            if headers is None:
                await self._bus.publish(topic, event)
            else:
                await self._bus.publish_many([Outgoing(topic, event, headers)])
        finally:
            self._metrics.publish_timer(topic).observe(perf_counter() - started)

    def publish_soon(
        self, topic: Topic[E], event: E | EncodedEvent[E], headers: Mapping[str, str]
    ) -> "asyncio.Future[Any] | None":
        """``publish`` without a coroutine: the future of the record's acknowledgement
        (failed with one of ``PRODUCER_ERRORS`` if it is not durable); raises
        ``PublishError`` if the record could not even be appended. None: the bus appends
        only in a coroutine (nothing done)."""
        bus = self._appends_now
        if bus is None:
            return None
        started = perf_counter()
        try:
            acknowledged = bus.append_now(Outgoing(topic, event, headers))
        except PRODUCER_ERRORS as exc:
            raise PublishError(f"{topic}: {exc}") from exc
        if acknowledged is None:
            return None
        timer = self._metrics.publish_timer(topic)
        acknowledged.add_done_callback(lambda _: timer.observe(perf_counter() - started))
        return acknowledged

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        """Return once every record is durable (one acknowledgement wait for all); raises
        ``PublishError`` otherwise. Each record's topic times the wait."""
        started = perf_counter()
        try:
            await self._bus.publish_many(records)
        finally:
            elapsed = perf_counter() - started
            for topic in {record.topic for record in records}:
                self._metrics.publish_timer(topic).observe(elapsed)
