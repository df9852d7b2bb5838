"""CSMS-initiated calls (``StationCommand``) and service answers (``CallAnswer``).

Both arrive in this gateway's mailbox. A command is delivered only to the
exact connection it was routed to (the connection id fences it): anything
else is answered OFFLINE at once, so it never reaches a superseded connection.
"""

import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from csms_core import topics
from csms_core.bus import PublishError
from csms_core.router import (
    CallAnswer,
    CloseConnection,
    CommandOutcome,
    CommandResult,
    Router,
    StationCommand,
)
from csms_gateway import events
from csms_gateway.events import ConnectionInfo, EventPublisher
from csms_gateway.metrics import GatewayMetrics
from csms_ocpp import schemas
from csms_ocpp.actions import is_station_initiated
from csms_ocpp.frames import CallError, CallResult
from csms_ocpp.versions import OcppVersion

logger = logging.getLogger(__name__)

# Actions both sides may initiate (OCPP 1.6 §4.3 / 2.0.1 P01/P02: DataTransfer).
BOTH_WAYS = frozenset({"DataTransfer"})


def result(
    command: StationCommand,
    outcome: CommandOutcome,
    started: float,
    *,
    payload: dict[str, object] | None = None,
    error_code: str | None = None,
    error_description: str = "",
) -> CommandResult:
    """The ``CommandResult`` of ``command``, timed from ``started`` (``time.monotonic``)."""
    return CommandResult(
        command_id=command.command_id,
        station_id=command.station_id,
        action=command.action,
        outcome=outcome,
        payload=payload,
        error_code=error_code,
        error_description=error_description,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        traceparent=command.traceparent,
    )


def refusal(version: OcppVersion, command: StationCommand, started: float) -> CommandResult | None:
    """TIMEOUT or REJECTED before sending, or None when the command may go out."""
    if time.time() >= command.deadline:
        return result(command, CommandOutcome.TIMEOUT, started, error_description="deadline passed")
    if not schemas.has_schema(version, command.action):
        text = f"{command.action} is not an OCPP {version.number} message"
        return result(command, CommandOutcome.REJECTED, started, error_description=text)
    if is_station_initiated(version, command.action) and command.action not in BOTH_WAYS:
        text = f"{command.action} is sent by a charging station, not by the CSMS"
        return result(command, CommandOutcome.REJECTED, started, error_description=text)
    violation = schemas.validate(version, command.action, command.payload)
    if violation is None:
        return None
    return result(
        command,
        CommandOutcome.REJECTED,
        started,
        error_code=violation.code.value,
        error_description=violation.description,
    )


def outcome_of(
    info: ConnectionInfo, command: StationCommand, answer: CallResult | CallError, started: float
) -> CommandResult:
    """RESULT, INVALID_RESPONSE or ERROR from the station's answer."""
    if isinstance(answer, CallError):
        return result(
            command,
            CommandOutcome.ERROR,
            started,
            payload=answer.details or None,
            error_code=answer.code,
            error_description=answer.description,
        )
    violation = schemas.validate(
        info.version, command.action, answer.payload, response=True, lenient=info.lenient
    )
    if violation is None:
        return result(command, CommandOutcome.RESULT, started, payload=answer.payload)
    logger.warning(
        "%s answer breaks its schema: %s", command.action, violation.description, extra=info.log
    )
    return result(
        command,
        CommandOutcome.INVALID_RESPONSE,
        started,
        payload=answer.payload,
        error_code=violation.code.value,
        error_description=violation.description,
    )


class CommandReporter:
    """Returns a ``CommandResult`` to the caller's mailbox and to ``ocpp.command-results``."""

    def __init__(
        self, gateway_id: str, router: Router, publisher: EventPublisher, metrics: GatewayMetrics
    ) -> None:
        self._gateway_id = gateway_id
        self._router = router
        self._publisher = publisher
        self._metrics = metrics

    async def report(
        self, command: StationCommand, outcome: CommandResult, info: ConnectionInfo | None
    ) -> None:
        self._metrics.command_outcomes.labels(command.action, outcome.outcome.value).inc()
        extra = {"station_id": command.station_id, "command_id": command.command_id}
        logger.info("command %s: %s", command.action, outcome.outcome.value, extra=extra)
        try:
            await self._router.send(command.reply_to, outcome)
        except Exception:
            logger.exception("could not return the command result", extra=extra)
        event = events.command_result(info, command, outcome, self._gateway_id)
        try:
            await self._publisher.publish(topics.OCPP_COMMAND_RESULTS, event)
        except PublishError:
            logger.exception("could not publish the command result", extra=extra)


class Connections(Protocol):
    """Where the mailbox reader finds the connection a message is for."""

    def deliver_command(self, command: StationCommand) -> bool: ...

    def deliver_answer(self, answer: CallAnswer) -> bool: ...

    def close_connection(self, close: CloseConnection) -> bool: ...


async def read_mailbox(
    mailbox: AsyncIterator[object], connections: Connections, reporter: CommandReporter
) -> None:
    """Dispatch every message of this gateway's mailbox until cancelled."""
    async for message in mailbox:
        try:
            await _dispatch(message, connections, reporter)
        except Exception:
            logger.exception("could not handle mailbox message %r", message)


async def _dispatch(message: object, connections: Connections, reporter: CommandReporter) -> None:
    if isinstance(message, StationCommand):
        if not connections.deliver_command(message):
            offline = result(
                message,
                CommandOutcome.OFFLINE,
                time.monotonic(),
                error_description="no open connection with this connection id on this gateway",
            )
            await reporter.report(message, offline, None)
    elif isinstance(message, CallAnswer):
        if not connections.deliver_answer(message):
            logger.warning(
                "late or unknown answer to %s dropped",
                message.message_id,
                extra={"station_id": message.station_id, "connection_id": message.connection_id},
            )
    elif isinstance(message, CloseConnection):
        if not connections.close_connection(message):
            logger.info(
                "connection to close is gone already",
                extra={"station_id": message.station_id, "connection_id": message.connection_id},
            )
    else:
        logger.warning("unexpected mailbox message %r", message)
