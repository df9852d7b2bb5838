"""Routing protocol between services and gateways (ARCHITECTURE.md "Redis-routed reply channel").

- A gateway records ``station → Route(gateway id, connection id, version)``
  while it holds the station, refreshing a TTL; it unregisters on disconnect
  only if the route is still its own connection's.
- Every process has a mailbox (an address). A gateway's address is
  ``gateway:{gateway_id}``; a service process has its own for replies.
- A service reaches a station by sending a ``StationCommand`` to the holding
  gateway's mailbox; the gateway answers with a ``CommandResult`` to the
  command's ``reply_to`` mailbox. The command names the connection id it was
  routed to: a gateway never delivers it to any other connection (fencing).
- A service answers a station's CALL with a ``CallAnswer`` sent to the
  gateway and connection named in the inbound event.
"""

from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

if TYPE_CHECKING:  # the directory's model (csms_core.calls imports this module)
    from csms_core.calls.declaration import Declaration
    from csms_core.calls.directory import Announced


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    station_id: str
    gateway_id: str
    connection_id: str
    ocpp_version: str = Field(examples=["2.0.1"])

    @property
    def address(self) -> str:
        return gateway_address(self.gateway_id)


def gateway_address(gateway_id: str) -> str:
    return f"gateway:{gateway_id}"


class StationCommand(BaseModel):
    """A CSMS-initiated CALL for one station connection."""

    kind: Literal["command"] = "command"
    command_id: str
    station_id: str
    connection_id: str
    action: str
    payload: dict[str, Any]
    reply_to: str
    deadline: float = Field(description="Unix time after which the caller no longer waits")
    traceparent: str | None = None


class CallAnswer(BaseModel):
    """A service's part of the answer to a station's CALL: the result payload it decided
    (or the fields it contributes, see ``csms_core.calls``), or a CALLERROR."""

    kind: Literal["answer"] = "answer"
    station_id: str
    connection_id: str
    message_id: str
    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str = ""
    traceparent: str | None = None
    # The party (service) whose part this is; None: the CALL's owner (older senders).
    party: str | None = None


class CloseConnection(BaseModel):
    """To the gateway holding ``connection_id``: the station connected again elsewhere, with
    credentials at least as strong as its profile, so that connection is closed."""

    kind: Literal["close"] = "close"
    station_id: str
    connection_id: str
    reason: str = "superseded"


class CommandOutcome(StrEnum):
    RESULT = "result"  # the station answered with a CALLRESULT
    ERROR = "error"  # the station answered with a CALLERROR
    INVALID_RESPONSE = "invalid_response"  # the CALLRESULT broke its schema
    TIMEOUT = "timeout"  # the station did not answer in time
    OFFLINE = "offline"  # the connection named by the command is gone
    REJECTED = "rejected"  # the gateway refused to send it (e.g. payload breaks the schema)


class CommandResult(BaseModel):
    kind: Literal["result"] = "result"
    command_id: str
    station_id: str
    action: str
    outcome: CommandOutcome
    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str = ""
    duration_ms: float = 0.0
    traceparent: str | None = None
    # The OCPP version the command was built for (set by the sending CommandClient).
    ocpp_version: str | None = None


# What a mailbox carries.
Message = StationCommand | CallAnswer | CommandResult | CloseConnection
RouterMessage = Annotated[Message, Field(discriminator="kind")]
router_message_adapter: TypeAdapter[Message] = TypeAdapter(RouterMessage)


class Router(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def register(self, route: Route, ttl_s: float) -> None:
        """Record that ``route.gateway_id`` holds the station now (supersedes any older route)."""
        ...

    async def refresh(self, routes: list[Route], ttl_s: float) -> None:
        """Extend our routes' TTL; re-create any that vanished (e.g. Redis restarted)."""
        ...

    async def unregister(self, route: Route) -> None:
        """Remove the route only if it is still exactly this one."""
        ...

    async def register_many(self, routes: Sequence[Route], ttl_s: float) -> list[Route | None]:
        """``register`` each route, in order, in one round trip; the route each replaced,
        read in the same step as its write (None where the station had none live)."""
        ...

    async def unregister_many(self, routes: Sequence[Route]) -> None:
        """``unregister`` each route (each only if still exactly itself), in one round trip."""
        ...

    async def lookup(self, station_id: str) -> Route | None: ...

    async def send_routed(self, command: StationCommand, ocpp_version: str) -> Route | None:
        """Look the station's route up and, if it speaks ``ocpp_version``, append ``command``
        to its gateway's mailbox with the route's connection id (``command.connection_id``
        is replaced), in one step: no route can change between the lookup and the append.
        The route as found: None if no gateway holds the station (nothing sent); a route
        of another version: nothing sent either (the caller builds the call for it)."""
        ...

    async def warm(self, connections: int) -> None:
        """Open ``connections`` to the store now (a REST process at start-up: its first
        commands then open none of their own)."""
        ...

    async def send(self, address: str, message: Message) -> None:
        """Append to a mailbox."""
        ...

    async def send_many(self, messages: Sequence[tuple[str, Message]]) -> None:
        """Append each (address, message) to its mailbox, in order, in one round trip."""
        ...

    async def open_mailbox(self, address: str) -> AsyncIterator[Message]:
        """Messages sent to ``address`` from the moment this returns, in order."""
        ...

    async def announce(self, declaration: "Declaration", replica: str, ttl_s: float) -> None:
        """Record what ``replica`` of ``declaration.party`` answers, for ``ttl_s``
        (``csms_core.calls.directory``)."""
        ...

    async def withdraw(self, party: str, replica: str) -> None:
        """Forget ``replica``'s declaration (it stops), and keep that it was withdrawn for
        ``WITHDRAWN_KEPT_S`` (gateways end their lease on it)."""
        ...

    async def declarations(self) -> list["Announced"]:
        """Every replica that announced within its TTL, with what is left of the TTL."""
        ...

    async def withdrawn(self) -> frozenset[str]:
        """The replicas withdrawn within the last ``WITHDRAWN_KEPT_S``."""
        ...
