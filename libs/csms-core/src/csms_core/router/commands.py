"""The service side of the reply channel: send commands to stations, answer their CALLs.

One command path (``CommandClient.call(station_id, build)``): ``build(version)`` makes the
call for the version of the station's connection, the official schema checks it (a call
of ours that breaks it is never sent: ``InvalidCommand``), and it goes to the gateway
holding that connection with the route read in the same step (``Router.send_routed``: one
Redis round trip, one route lookup), never to a connection of another version.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self
from uuid import uuid4

from csms_core.actor import current_actor
from csms_core.router.base import (
    CallAnswer,
    CommandOutcome,
    CommandResult,
    Message,
    Router,
    StationCommand,
    gateway_address,
)
from csms_core.telemetry import current_trace_headers
from csms_ocpp import ErrorCode, OcppVersion, schemas
from csms_ocpp.actions import is_csms_initiated

logger = logging.getLogger(__name__)


VERSIONS_KEPT = 100_000  # stations whose last version a CommandClient remembers

Build = Callable[[OcppVersion], tuple[str, dict[str, Any]]]


class StationOffline(LookupError):
    """No gateway holds a connection to this station."""


class InvalidCommand(ValueError):
    """A command we built is no valid message of the station's version: never sent."""

    def __init__(
        self, version: OcppVersion, action: str, description: str, code: ErrorCode
    ) -> None:
        super().__init__(f"{action} (OCPP {version.number}): {description}")
        self.version = version
        self.action = action
        self.description = description
        self.code = code  # the OCPP error code the violation would earn (FormatViolation, ...)


class Reconnected(StationOffline):
    """The connection a call was planned for is gone: the station's live one speaks
    another OCPP version."""


def fixed(action: str, payload: dict[str, Any]) -> Build:
    """The build of a call that is the same in every version the station may speak."""
    return lambda _version: (action, payload)


def planned(version: OcppVersion, action: str, payload: dict[str, Any]) -> Build:
    """The build of a call made for ``version`` (after reading it to plan several calls):
    ``Reconnected`` on a connection of another version, so it never goes out in the wrong
    shape."""

    def build(actual: OcppVersion) -> tuple[str, dict[str, Any]]:
        if actual is not version:
            raise Reconnected(f"planned for OCPP {version.number}, speaks {actual.number}")
        return action, payload

    return build


class CommandAudit(Protocol):
    """Where every command sent to a station is recorded (``csms_api.audit.AuditLog``)."""

    async def record_command(
        self, station_id: str, action: str, result: CommandResult, *, actor: str | None
    ) -> None: ...


class CommandClient:
    """Sends CSMS-initiated calls through the holding gateway and awaits their results.

    One per process: it owns a reply mailbox and resolves each waiting caller
    when the gateway's ``CommandResult`` arrives there. With ``audit``, every command
    sent or attempted is recorded with its outcome and who caused it (the REST caller being
    served, ``csms_core.actor``; else the service itself).
    """

    def __init__(self, router: Router, service: str, audit: CommandAudit | None = None) -> None:
        self._router = router
        self._audit = audit
        self.address = f"{service}:{uuid4().hex[:12]}"
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        # station: the OCPP version its route had at our last command to it (the guess
        # its next command is built for, checked against the route as it is sent)
        self._versions: dict[str, str] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Open the reply mailbox; its reader runs in a TaskGroup of the entering task (the
        service's): should it ever fail, that task is cancelled and the failure raised at
        the block's end, never a reader gone quietly with every later command timing out.
        The router skips entries that are no message (``csms_mailbox_undecodable_total``)."""
        replies = await self._router.open_mailbox(self.address)
        tasks = asyncio.TaskGroup()
        await tasks.__aenter__()
        self._tasks = tasks
        self._reader = tasks.create_task(
            self._read_replies(replies), name=f"replies {self.address}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._tasks is not None:
            await self._tasks.__aexit__(exc_type, exc, traceback)

    async def _read_replies(self, replies: AsyncIterator[Message]) -> None:
        async for message in replies:
            if isinstance(message, CommandResult):
                waiter = self._waiting.pop(message.command_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)

    async def call(self, station_id: str, build: Build, timeout_s: float) -> CommandResult:
        """Send ``build(version)`` to the station over its live connection (one route
        lookup: the version and the connection are that route's); StationOffline if no
        gateway holds it, InvalidCommand if what ``build`` made breaks the schema (and
        whatever ``build`` raises, e.g. a call the version has no equivalent of)."""
        if self._audit is None:
            return await self._call(station_id, build, timeout_s)
        try:
            result = await self._call(station_id, build, timeout_s)
        except (StationOffline, InvalidCommand) as exc:  # an attempt is audited too
            offline = isinstance(exc, StationOffline)
            action = exc.action if isinstance(exc, InvalidCommand) else _action_of(build)
            unsent = CommandResult(
                command_id="",
                station_id=station_id,
                action=action,
                outcome=CommandOutcome.OFFLINE if offline else CommandOutcome.REJECTED,
                error_description=str(exc),
            )
            await self._audit.record_command(station_id, action, unsent, actor=current_actor())
            raise
        await self._audit.record_command(station_id, result.action, result, actor=current_actor())
        return result

    async def _call(self, station_id: str, build: Build, timeout_s: float) -> CommandResult:
        """Build the call for the version the station spoke at our last command to it, and
        send it with the route read in the same round trip (``Router.send_routed``); only a
        station new to us, or one that came back in another version, costs a round trip
        more (a lookup, or the send refused for its version)."""
        guessed = self._versions.get(station_id)
        if guessed is None:
            route = await self._router.lookup(station_id)
            if route is None:
                raise StationOffline(station_id)
            number = route.ocpp_version
        else:
            number = guessed
        for _attempt in range(2):
            version = OcppVersion.from_number(number)
            try:
                action, payload = build(version)
                _check(version, action, payload)
            except Exception:
                if guessed is None:
                    raise
                # What it raised is about the version we guessed: ask again with the route's.
                self._versions.pop(station_id, None)
                return await self._call(station_id, build, timeout_s)
            command = StationCommand(
                command_id=uuid4().hex,
                station_id=station_id,
                connection_id="",  # the route's, put in by the router
                action=action,
                payload=payload,
                reply_to=self.address,
                deadline=time.time() + timeout_s,
                traceparent=current_trace_headers().get("traceparent"),
            )
            waiter = self._wait_for(command.command_id)
            try:
                route = await self._router.send_routed(command, version.number)
                if route is None:
                    self._versions.pop(station_id, None)
                    raise StationOffline(station_id)
                self._remember(station_id, route.ocpp_version)
                if route.ocpp_version == version.number:
                    result = await self._result(command, waiter, timeout_s)
                    return result.model_copy(update={"ocpp_version": version.number})
            finally:
                self._waiting.pop(command.command_id, None)
            number, guessed = route.ocpp_version, None  # it speaks another version now
        raise Reconnected(f"{station_id} changed its OCPP version twice while we sent")

    def _remember(self, station_id: str, number: str) -> None:
        if len(self._versions) >= VERSIONS_KEPT and station_id not in self._versions:
            self._versions.clear()  # a bound, not a cache policy: guesses are cheap to redo
        self._versions[station_id] = number

    def _wait_for(self, command_id: str) -> asyncio.Future[CommandResult]:
        waiter: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = waiter
        return waiter

    async def _result(
        self, command: StationCommand, waiter: asyncio.Future[CommandResult], timeout_s: float
    ) -> CommandResult:
        try:
            # A little grace beyond the deadline for the gateway's own timeout result to arrive.
            return await asyncio.wait_for(waiter, timeout_s + 2.0)
        except TimeoutError:
            return CommandResult(
                command_id=command.command_id,
                station_id=command.station_id,
                action=command.action,
                outcome=CommandOutcome.TIMEOUT,
                error_description="no result from the gateway in time",
                duration_ms=(timeout_s + 2.0) * 1000,
            )

    async def answer(self, answer: CallAnswer, gateway_id: str) -> None:
        """Answer a station's CALL on the gateway connection that received it."""
        await self._router.send(gateway_address(gateway_id), answer)

    async def answer_many(self, answers: Sequence[tuple[CallAnswer, str]]) -> None:
        """Answer many CALLs (each with its gateway id) in one round trip, in order."""
        await self._router.send_many(
            [(gateway_address(gateway_id), answer) for answer, gateway_id in answers]
        )


def _action_of(build: Build) -> str:
    """The action ``build`` makes, for the audit of a call that was not sent."""
    for version in (OcppVersion.V201, OcppVersion.V16, OcppVersion.V21):
        try:
            return build(version)[0]
        except Exception:  # noqa: BLE001, S112 - only naming it
            continue
    return "unknown"


def _check(version: OcppVersion, action: str, payload: dict[str, Any]) -> None:
    if not schemas.has_schema(version, action):
        raise InvalidCommand(
            version, action, "no message of this version", ErrorCode.NOT_IMPLEMENTED
        )
    if not is_csms_initiated(version, action):
        text = "sent by charging stations, not by the CSMS"
        raise InvalidCommand(version, action, text, ErrorCode.NOT_SUPPORTED)
    violation = schemas.validate(version, action, payload)
    if violation is not None:
        raise InvalidCommand(version, action, violation.description, violation.code)
