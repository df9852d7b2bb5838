"""A service's handlers of station CALLs, registered where each is defined.

In the spirit of mobilityhouse/ocpp's ``@on(Action.X)``: a service keeps one
``CallHandlers`` and registers each handler with the typed message it takes
(``csms_ocpp.messages``) and what it does for the answer::

    calls = CallHandlers[EventContext]("sessions")

    @calls.decides(AUTHORIZE)
    async def on_authorize(ctx: EventContext, request: AuthorizeRequest) -> AuthorizeResponse:
        ...

- ``decides``: the handler returns the answer (its message's response type). It runs for
  every such CALL; its answer goes out when the gateway named this party the CALL's
  owner (``when=`` narrows the claim, e.g. ``has("idToken")`` for TransactionEvent).
- ``contributes``: the handler returns fields the gateway adds to the answer someone
  else decides (or gives itself), e.g. a cost; ``{}`` when it has none. ``wait_s=``
  bounds how long the gateway waits for it; one handler may contribute under several
  conditions (stacked decorators), each its own claim.
- ``handles``: the handler only learns from the CALL.

``declaration()`` is what the party announces while it runs (``directory``);
``answer_owed`` turns what a handler returned into the ``CallAnswer`` the party owes.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from csms_core.calls.declaration import Claim, Condition, Declaration, Role
from csms_core.events.ocpp import OcppCall, OcppSend
from csms_core.router.base import CallAnswer
from csms_core.telemetry import current_trace_headers
from csms_ocpp import ErrorCode, OcppVersion, error_code, schemas
from csms_ocpp.messages import Message

Ctx = TypeVar("Ctx")
Req = TypeVar("Req", bound=Mapping[str, object])
Resp = TypeVar("Resp", bound=Mapping[str, object])
Part = Mapping[str, object]
H = TypeVar("H")

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "1.6"  # a record without ocpp_version (older gateways wrote none)


Term = tuple[Condition | None, float | None]  # a claim's condition and its bounded wait


@dataclass(frozen=True, slots=True)
class Registered(Generic[Ctx]):
    """One handler: the message it takes, its role (None: it only learns) and the terms it
    claims under (its condition and bounded wait, one per registration)."""

    message: Message[Any, Any]
    role: Role | None
    terms: tuple[Term, ...]
    handler: Callable[[Ctx, Any], Awaitable[Part | None]]


class CallHandlers(Generic[Ctx]):
    """One party's handlers of station CALLs by action and version; ``Ctx`` is what each
    handler gets besides the request."""

    def __init__(self, party: str) -> None:
        self.party = party
        self._handlers: dict[tuple[str, str], Registered[Ctx]] = {}

    def decides(
        self, message: Message[Req, Resp], *, when: Condition | None = None
    ) -> Callable[[Callable[[Ctx, Req], Awaitable[Resp]]], Callable[[Ctx, Req], Awaitable[Resp]]]:
        """Register a handler that returns the answer this party decides."""
        return self._register(message, Role.DECIDES, when)

    def contributes(
        self,
        message: Message[Req, Any],
        *,
        when: Condition | None = None,
        wait_s: float | None = None,
    ) -> Callable[[Callable[[Ctx, Req], Awaitable[Part]]], Callable[[Ctx, Req], Awaitable[Part]]]:
        """Register a handler that returns fields this party adds to the answer (waited for
        at most ``wait_s`` when given, else within the decision timeout)."""
        return self._register(message, Role.CONTRIBUTES, when, wait_s)

    def handles(
        self, message: Message[Req, Any]
    ) -> Callable[[Callable[[Ctx, Req], Awaitable[None]]], Callable[[Ctx, Req], Awaitable[None]]]:
        """Register a handler that only learns from the CALL (its answer is not ours)."""
        return self._register(message, None, None)

    def _register(
        self,
        message: Message[Any, Any],
        role: Role | None,
        when: Condition | None,
        wait_s: float | None = None,
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            for version in message.versions:
                key = (message.action, version)
                known = self._handlers.get(key)
                if known is None:
                    self._handlers[key] = Registered(message, role, ((when, wait_s),), handler)  # type: ignore[arg-type]
                elif role is Role.CONTRIBUTES and known.role is role and known.handler is handler:
                    # The same contribution under another condition (stacked decorators).
                    self._handlers[key] = replace(known, terms=(*known.terms, (when, wait_s)))
                else:
                    raise ValueError(f"{self.party}: {message.action} {version} has a handler")
            return handler

        return register

    def handler(self, action: str, version: str | None) -> Registered[Ctx] | None:
        """The handler of ``action`` in ``version``, if this party has one."""
        return self._handlers.get((action, version or DEFAULT_VERSION))

    def declaration(self) -> Declaration:
        """What this party decides and contributes, by action (its handlers that only learn
        are no claim: nobody waits for them)."""
        claims: dict[tuple[str, Role, Condition | None, float | None], list[str]] = {}
        for (action, version), registered in sorted(self._handlers.items()):
            if registered.role is not None:
                for when, wait_s in registered.terms:
                    claims.setdefault((action, registered.role, when, wait_s), []).append(version)
        return Declaration(
            party=self.party,
            claims=tuple(
                Claim(action=action, role=role, versions=tuple(versions), when=when, wait_s=wait_s)
                for (action, role, when, wait_s), versions in claims.items()
            ),
        )

    async def run(self, ctx: Ctx, call: OcppCall | OcppSend) -> CallAnswer | None:
        """Run the handler of ``call`` (if any); the ``CallAnswer`` this party owes for it."""
        registered = self.handler(call.data.action, call.ocpp_version)
        if registered is None:
            return None
        returned = await registered.handler(ctx, call.data.payload)
        return self.answer_owed(call, registered, returned)

    def answer_owed(
        self, call: OcppCall | OcppSend, registered: Registered[Ctx], returned: Part | None
    ) -> CallAnswer | None:
        """What this party sends for ``call`` after its handler returned ``returned``:
        the decision when it owns the CALL, its fields when it contributes, else nothing.

        A decision that breaks the response schema is our bug: CALLERROR InternalError
        at once rather than the station waiting for the fallback.
        """
        if not isinstance(call, OcppCall):
            return None  # an OCPP 2.1 SEND is never answered
        data = call.data
        if registered.role is Role.DECIDES and data.owner == self.party:
            return self._decision(call, returned)
        if registered.role is Role.CONTRIBUTES and self.party in data.contributors:
            return self._part(call, payload=dict(returned or {}))
        return None

    def _decision(self, call: OcppCall, returned: Part | None) -> CallAnswer:
        version = OcppVersion.from_number(call.ocpp_version or DEFAULT_VERSION)
        action = call.data.action
        if returned is None:
            text = f"{action} is not handled by the CSMS"
            return self._refusal(call, version, ErrorCode.NOT_IMPLEMENTED, text)
        payload = dict(returned)
        violation = schemas.validate(version, action, payload, response=True)
        if violation is None:
            return self._part(call, payload=payload)
        # The gateway would refuse it anyway; the station gets a clear error at once.
        logger.error("own %s answer breaks its schema: %s", action, violation.description)
        text = "the CSMS could not form a valid answer"
        return self._refusal(call, version, ErrorCode.INTERNAL_ERROR, text)

    def _refusal(
        self, call: OcppCall, version: OcppVersion, code: ErrorCode, text: str
    ) -> CallAnswer:
        return self._part(call, error_code=error_code(code, version), error_description=text)

    def _part(self, call: OcppCall, **fields: Any) -> CallAnswer:
        return CallAnswer(
            station_id=call.station_id,
            connection_id=call.data.connection_id,
            message_id=call.data.message_id,
            party=self.party,
            traceparent=current_trace_headers().get("traceparent"),
            **fields,
        )
