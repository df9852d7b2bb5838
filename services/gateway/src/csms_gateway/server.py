"""The gateway: a WebSocket server for stations, a mailbox reader and a route keeper.

The caller owns the bus, router and identity store (opened and closed in its
lifespan); the gateway only uses them while ``run`` runs.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from uuid import uuid4

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode

from csms_core import topics
from csms_core.bus import Bus, Outgoing
from csms_core.calls import AnswerDirectory
from csms_core.events import ConnectionClosed, ConnectionOpened
from csms_core.identity import IdentityStore
from csms_core.router import CallAnswer, CloseConnection, Route, Router, StationCommand
from csms_core.router.base import gateway_address
from csms_core.telemetry import MessageSampling
from csms_gateway import events
from csms_gateway.admission import ConnectionCaps
from csms_gateway.coalescing import Coalescer
from csms_gateway.commands import CommandReporter, read_mailbox
from csms_gateway.connection import StationConnection
from csms_gateway.direct import StationSocket
from csms_gateway.events import ConnectionInfo, EventPublisher
from csms_gateway.handshake import Admission, Handshake, select_subprotocol
from csms_gateway.metrics import GatewayMetrics
from csms_gateway.refusals import RefusalReporter
from csms_gateway.settings import GatewaySettings
from csms_gateway.tls import server_context

logger = logging.getLogger(__name__)

# An application close code (RFC 6455 §7.4.2): a newer connection of the same station won.
SUPERSEDED_CLOSE_CODE = 4000


def route_of(info: ConnectionInfo) -> Route:
    return Route(
        station_id=info.station_id,
        gateway_id=info.gateway_id,
        connection_id=info.connection_id,
        ocpp_version=info.version.number,
    )


class Gateway:
    """Terminates stations' OCPP WebSockets; see ARCHITECTURE.md "gateway"."""

    def __init__(
        self,
        settings: GatewaySettings,
        bus: Bus,
        router: Router,
        identities: IdentityStore,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self.port: int | None = None
        self._router = router
        self._publisher = EventPublisher(bus, self.metrics)
        self._reporter = CommandReporter(settings.gateway_id, router, self._publisher, self.metrics)
        self.caps = ConnectionCaps(settings.max_connections, settings.max_connections_per_address)
        self.refusals = RefusalReporter(settings.gateway_id, self._publisher, self.metrics)
        self._handshake = Handshake(
            identities,
            self.metrics,
            settings.min_security_profile,
            unknown_station_policy=settings.unknown_station_policy,
            caps=self.caps,
            on_refused=self.refusals,
        )
        self._sampling = MessageSampling(settings.trace_sample_ratio)
        self.answers = AnswerDirectory(router)  # who answers what: the services' declarations
        self._connections: dict[str, StationConnection] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        # A reconnect storm's route (un)registrations and connection events, a batch per
        # round trip (coalescing): one pipeline, one acknowledgement wait for many.
        self._registrations = Coalescer[Route, Route | None](
            self._register_routes, "route registrations"
        )
        self._removals = Coalescer[Route, None](router.unregister_many, "route removals")
        self._connection_events = Coalescer[Outgoing, None](
            self._publisher.publish_many, "connection events"
        )

    async def _register_routes(self, routes: Sequence[Route]) -> list[Route | None]:
        return await self._router.register_many(routes, self.settings.route_ttl_s)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Serve stations until ``stopping`` is set, then shut down gracefully."""
        mailbox = await self._router.open_mailbox(gateway_address(self.settings.gateway_id))
        async with self._serve() as server, asyncio.TaskGroup() as tasks:
            self.port = server.sockets[0].getsockname()[1]
            await self.answers.refresh()
            background = [
                tasks.create_task(read_mailbox(mailbox, self, self._reporter)),
                tasks.create_task(self._refresh_routes()),
                tasks.create_task(self.answers.run()),
            ]
            scheme = "wss" if self.settings.tls else "ws"
            logger.info(
                "gateway %s listening on %s port %s", self.settings.gateway_id, scheme, self.port
            )
            capped = backlog_warning(self.settings.listen_backlog)
            if capped is not None:
                logger.warning(capped)
            if ready is not None:
                ready.set()
            await stopping.wait()
            await self._shut_down(server)
            await self.refusals.drain()
            for coalescer in (self._removals, self._connection_events):
                await coalescer.drain()  # what the cancelled handlers left
            for task in background:
                task.cancel()

    def _serve(self) -> contextlib.AbstractAsyncContextManager[Server]:
        settings = self.settings
        return serve(
            self._handle,
            settings.ocpp_host,
            settings.ocpp_port,
            ssl=server_context(settings),
            process_request=self._handshake,
            create_connection=StationSocket,
            select_subprotocol=select_subprotocol,
            max_size=settings.max_message_bytes,
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            open_timeout=settings.open_timeout_s,
            backlog=settings.listen_backlog,
            ssl_handshake_timeout=settings.tls_handshake_timeout_s if settings.tls else None,
        )

    async def _shut_down(self, server: Server) -> None:
        """Stop accepting, close every WebSocket with 1001 (going away), drain, then cancel."""
        logger.info("gateway %s shutting down", self.settings.gateway_id)
        server.close(close_connections=True, code=CloseCode.GOING_AWAY, reason="going away")
        try:
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                await server.wait_closed()
        except TimeoutError:
            logger.warning("%d connections still draining; cancelling", len(self._handlers))
            for handler in self._handlers:
                handler.cancel()
            await server.wait_closed()

    # -- one connection -----------------------------------------------------------------------

    async def _handle(self, websocket: ServerConnection) -> None:
        admission = self._handshake.admitted.pop(websocket, None)
        if admission is None:  # process_request always admits first; be safe anyway
            await websocket.close(CloseCode.INTERNAL_ERROR, "not admitted")
            return
        handler = asyncio.current_task()
        assert handler is not None  # noqa: S101 - always inside a task here
        self._handlers.add(handler)
        try:
            await self._serve_station(websocket, admission)
        finally:
            self._handlers.discard(handler)

    async def _serve_station(self, websocket: ServerConnection, admission: Admission) -> None:
        connection = self._open(websocket, admission)
        info = connection.info
        try:
            replaced = await self._registrations.submit(route_of(info))
            await self._supersede_elsewhere(info, replaced)
        except Exception:
            logger.exception("could not register the route", extra=info.log)
            self._forget(connection)
            await websocket.close(CloseCode.TRY_AGAIN_LATER, "try again later")
            return
        gauge = self.metrics.connected_stations.labels(info.version.number)
        gauge.inc()
        try:
            await self._publish_connection(events.connection_opened(info), info)
            await connection.serve()
        finally:
            gauge.dec()
            await self._close(connection)

    def _open(self, websocket: ServerConnection, admission: Admission) -> StationConnection:
        info = ConnectionInfo(
            gateway_id=self.settings.gateway_id,
            connection_id=uuid4().hex,
            station_id=admission.station_id,
            version=admission.version,
            security_profile=admission.security_profile,
            lenient=admission.lenient,
            remote_address=admission.remote_address,
        )
        connection = StationConnection(
            websocket,
            info,
            settings=self.settings,
            publisher=self._publisher,
            reporter=self._reporter,
            metrics=self.metrics,
            sampling=self._sampling,
            registration=admission.registration,
            on_flood=self.refusals,
            directory=self.answers,
        )
        previous = self._connections.get(info.station_id)
        self._connections[info.station_id] = connection
        if previous is not None:
            logger.info("station reconnected; superseding the old connection", extra=info.log)
            previous.request_close(SUPERSEDED_CLOSE_CODE, "superseded")
        logger.info(
            "station connected (%s, security profile %d%s)",
            info.version.value,
            info.security_profile,
            ", lenient" if info.lenient else "",
            extra=info.log,
        )
        return connection

    def _forget(self, connection: StationConnection) -> None:
        if self._connections.get(connection.info.station_id) is connection:
            del self._connections[connection.info.station_id]

    async def _close(self, connection: StationConnection) -> None:
        info = connection.info
        self._forget(connection)
        with contextlib.suppress(Exception):
            # Compare-and-delete: a newer connection's route stays.
            await self._removals.submit(route_of(info))
        code, reason = connection.websocket.close_code, connection.websocket.close_reason or ""
        logger.info("station disconnected (%s %s)", code, reason, extra=info.log)
        await self._publish_connection(events.connection_closed(info, code, reason), info)

    async def _publish_connection(
        self, event: ConnectionOpened | ConnectionClosed, info: ConnectionInfo
    ) -> None:
        try:
            # Written in the order submitted, after this station's earlier event was.
            await self._connection_events.submit(Outgoing(topics.OCPP_CONNECTIONS, event))
        except Exception:
            logger.exception("could not publish %s", event.type, extra=info.log)

    def connection(self, station_id: str) -> StationConnection | None:
        """This gateway's current connection of ``station_id``."""
        return self._connections.get(station_id)

    # -- mailbox delivery (commands.Connections) ----------------------------------------------

    def deliver_command(self, command: StationCommand) -> bool:
        connection = self._connections.get(command.station_id)
        if connection is None or connection.info.connection_id != command.connection_id:
            return False
        return connection.submit(command)

    def close_connection(self, close: CloseConnection) -> bool:
        """Another gateway admitted the station again: close this gateway's connection."""
        connection = self._connections.get(close.station_id)
        if connection is None or connection.info.connection_id != close.connection_id:
            return False
        logger.info("station connected on another gateway; closing", extra=connection.info.log)
        connection.request_close(SUPERSEDED_CLOSE_CODE, close.reason)
        return True

    async def _supersede_elsewhere(self, info: ConnectionInfo, held: Route | None) -> None:
        """The handshake admitted this connection with the station's own credentials and
        profile (``handshake``): the connection whose route this one's replaced (``held``,
        swapped in the same step as the registration), if another gateway holds it, is
        closed through that gateway's mailbox (one on this gateway is closed by ``_open``)."""
        if held is None or held.gateway_id == self.settings.gateway_id:
            return
        close = CloseConnection(station_id=info.station_id, connection_id=held.connection_id)
        await self._router.send(gateway_address(held.gateway_id), close)

    def deliver_answer(self, answer: CallAnswer) -> bool:
        connection = self._connections.get(answer.station_id)
        if connection is None or connection.info.connection_id != answer.connection_id:
            return False
        return connection.deliver_answer(answer)

    # -- routes -------------------------------------------------------------------------------

    async def _refresh_routes(self) -> None:
        """Keep this gateway's routes alive, all in one batch per period."""
        while True:
            await asyncio.sleep(self.settings.route_refresh_s)
            routes = [route_of(connection.info) for connection in self._connections.values()]
            if not routes:
                continue
            try:
                await self._router.refresh(routes, self.settings.route_ttl_s)
            except Exception:
                logger.exception("could not refresh %d routes", len(routes))


SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def backlog_warning(requested: int, somaxconn: Path = SOMAXCONN) -> str | None:
    """Why the kernel queues fewer connections than ``CSMS_LISTEN_BACKLOG`` asks, if it
    does (Linux caps a listen backlog at ``net.core.somaxconn``); None where it does not,
    or where that cannot be read."""
    try:
        cap = int(somaxconn.read_text())
    except (OSError, ValueError):
        return None
    if cap >= requested:
        return None
    return (
        f"CSMS_LISTEN_BACKLOG {requested} is capped at {cap} by net.core.somaxconn: in a "
        f"reconnect storm of more stations than {cap} at once, the ones beyond it wait for "
        "TCP's retransmissions or have their connect reset (docs/operators.md, Scaling)"
    )


async def run_gateway(
    settings: GatewaySettings,
    bus: Bus,
    router: Router,
    identities: IdentityStore,
    *,
    stopping: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Run one gateway on already-opened bus, router and identity store until ``stopping``."""
    await Gateway(settings, bus, router, identities).run(ready=ready, stopping=stopping)
