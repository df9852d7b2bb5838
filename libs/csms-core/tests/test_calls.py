"""A service's registry of station CALL handlers, what it owes, and the directory."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from csms_core.calls import (
    Announced,
    Announcement,
    AnswerDirectory,
    CallHandlers,
    Claim,
    Condition,
    Declaration,
    Role,
    alive,
    equals,
    has,
    merge_answer,
    table_of,
)
from csms_core.calls.declaration import GATEWAY, NOBODY, Routing
from csms_core.calls.declared import SESSIONS, SMARTCHARGING
from csms_core.events import InboundCall, OcppCall, OcppSend
from csms_core.router.memory import InMemoryRouter
from csms_ocpp.messages import (
    AUTHORIZE,
    BOOT_NOTIFICATION,
    HEARTBEAT,
    TRANSACTION_EVENT,
    AuthorizeRequest,
    BootNotificationRequest,
    BootNotificationResponse,
)

ACCEPTED: BootNotificationResponse = {
    "status": "Accepted",
    "currentTime": "2025-01-01T00:00:00.000Z",
    "interval": 300,
}


def call(
    action: str, owner: str, contributors: tuple[str, ...] = (), kind: type[Any] = OcppCall
) -> Any:
    event: OcppCall | OcppSend = kind(
        source="csms/gateway/gw-1",
        station_id="CP-1",
        ocpp_version="2.0.1",
        data=InboundCall(
            gateway_id="gw-1",
            connection_id="c-1",
            action=action,
            message_id="m-1",
            payload={},
            received_at=datetime(2025, 1, 1, tzinfo=UTC),
            owner=owner,
            contributors=list(contributors),
        ),
    )
    return event


def registry(answer: Any = ACCEPTED) -> CallHandlers[None]:
    calls = CallHandlers[None]("sessions")

    @calls.decides(BOOT_NOTIFICATION)
    async def on_boot(ctx: None, request: BootNotificationRequest) -> BootNotificationResponse:
        return answer  # type: ignore[no-any-return]

    @calls.contributes(AUTHORIZE, when=has("certificate"))
    async def on_authorize(ctx: None, request: AuthorizeRequest) -> dict[str, object]:
        return {"certificateStatus": "Accepted"}

    @calls.handles(HEARTBEAT)
    async def on_heartbeat(ctx: None, request: object) -> None:
        return None

    return calls


def test_the_declaration_follows_from_the_registrations() -> None:
    claims = {(c.action, c.role.value, c.versions, c.when) for c in registry().declaration().claims}
    assert claims == {
        ("BootNotification", "decides", ("2.0.1", "2.1"), None),
        ("Authorize", "contributes", ("2.0.1", "2.1"), has("certificate")),
    }  # Heartbeat is only learnt from: no claim, nobody waits for it


async def test_the_owner_sends_its_decision() -> None:
    answer = await registry().run(None, call("BootNotification", owner="sessions"))
    assert answer is not None
    assert (answer.party, answer.payload, answer.error_code) == ("sessions", ACCEPTED, None)
    assert (answer.connection_id, answer.message_id) == ("c-1", "m-1")


async def test_a_decision_routed_elsewhere_or_a_send_owes_nothing() -> None:
    assert await registry().run(None, call("BootNotification", owner="nobody")) is None
    send = call("BootNotification", owner="sessions", kind=OcppSend)
    assert await registry().run(None, send) is None
    assert await registry().run(None, call("Heartbeat", owner="gateway")) is None


async def test_an_own_answer_breaking_its_schema_is_internal_error_at_once() -> None:
    answer = await registry({"status": "Maybe"}).run(None, call("BootNotification", "sessions"))
    assert answer is not None
    assert (answer.error_code, answer.payload) == ("InternalError", None)
    assert answer.error_description == "the CSMS could not form a valid answer"


async def test_a_contributor_sends_its_fields_only_when_waited_for() -> None:
    waited = call("Authorize", owner="other", contributors=("sessions",))
    part = await registry().run(None, waited)
    assert part is not None
    assert (part.party, part.payload) == ("sessions", {"certificateStatus": "Accepted"})
    assert await registry().run(None, call("Authorize", owner="other")) is None


def test_merged_answers_keep_the_owners_fields() -> None:
    decided = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    parts: list[dict[str, Any]] = [
        {"certificateStatus": "CertificateRevoked", "idTokenInfo": {"language1": "de"}},
        {"tariff": {"id": "t1"}},
    ]
    assert merge_answer(decided, parts) == {
        "idTokenInfo": {"status": "Accepted", "language1": "de"},
        "certificateStatus": "Accepted",
        "tariff": {"id": "t1"},
    }


def test_a_claim_counts_once_every_replica_makes_it() -> None:
    """A rolling upgrade: the new replica's extra claim waits until no old replica is left."""
    old = Declaration(party="sessions", claims=SESSIONS.claims[:-1])
    merged = alive([Announced("r-old", old, 15.0), Announced("r-new", SESSIONS, 15.0)])
    assert merged == [Declaration(party="sessions", claims=old.claims)]


async def test_an_announcement_is_withdrawn_when_its_replica_stops() -> None:
    router = InMemoryRouter()
    directory = AnswerDirectory(router)
    announcement = Announcement(router, SESSIONS)
    await announcement.announce()
    assert (await directory.route("1.6", "BootNotification", {})).owner == "sessions"
    await router.withdraw("sessions", announcement.replica)
    await directory.refresh()
    assert (await directory.route("1.6", "BootNotification", {})).owner == "nobody"


async def test_an_announcement_expires_with_its_ttl() -> None:
    router = InMemoryRouter()
    await router.announce(SESSIONS, "r-1", ttl_s=0.0)
    assert await router.declarations() == []


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Restartable:
    """A directory on an embedded router that can be restarted empty, as Redis can."""

    def __init__(self) -> None:
        self.router = InMemoryRouter()

    def restart(self) -> None:
        self.router = InMemoryRouter()

    async def announce(self, declaration: Declaration, replica: str, ttl_s: float) -> None:
        await self.router.announce(declaration, replica, ttl_s)

    async def withdraw(self, party: str, replica: str) -> None:
        await self.router.withdraw(party, replica)

    async def declarations(self) -> list[Announced]:
        return await self.router.declarations()

    async def withdrawn(self) -> frozenset[str]:
        return await self.router.withdrawn()


async def test_a_replica_the_router_forgot_is_routed_to_until_its_lease_ends() -> None:
    """A restarted Redis has lost every announcement: the gateway holds each replica for what
    was left of its TTL when last read (the replica renews well within that), not a Pending
    boot for every second until it does; a replica that stays silent is gone at the TTL."""
    router, clock = _Restartable(), _Clock()
    directory = AnswerDirectory(router, clock=clock)
    await router.announce(SESSIONS, "r-1", ttl_s=15.0)
    await directory.refresh()
    router.restart()
    clock.now += 14.0
    await directory.refresh()
    assert (await directory.route("1.6", "BootNotification", {})).owner == "sessions"
    clock.now += 2.0  # past the TTL that was left: the replica did not come back
    await directory.refresh()
    assert (await directory.route("1.6", "BootNotification", {})).owner == "nobody"


async def test_a_withdrawn_replica_is_not_held_by_its_lease() -> None:
    router = InMemoryRouter()
    directory = AnswerDirectory(router)
    await router.announce(SESSIONS, "r-1", ttl_s=15.0)
    await router.announce(SESSIONS, "r-2", ttl_s=15.0)
    await directory.refresh()
    await router.withdraw("sessions", "r-1")
    await directory.refresh()
    assert directory.table.parties == {"sessions"}  # r-2 still answers
    await router.withdraw("sessions", "r-2")
    await directory.refresh()
    assert (await directory.route("1.6", "BootNotification", {})).owner == "nobody"
    assert await router.withdrawn() == {"r-1", "r-2"}


def test_a_condition_on_a_fields_value_routes_only_that_value() -> None:
    """``equals``: billing adds to the TransactionEvent answers of Ended events only."""
    ended = Claim(
        action="TransactionEvent",
        role=Role.CONTRIBUTES,
        versions=("2.0.1",),
        when=equals("eventType", "Ended"),
    )
    table = table_of([SESSIONS, Declaration(party="billing", claims=(ended,))])
    last = table.route("2.0.1", "TransactionEvent", {"eventType": "Ended", "idToken": {}})
    assert (last.owner, last.contributors) == ("sessions", ("billing",))
    bare = table.route("2.0.1", "TransactionEvent", {"eventType": "Ended"})
    assert (bare.owner, bare.contributors, bare.waits) == ("gateway", ("billing",), True)
    updated = table.route("2.0.1", "TransactionEvent", {"eventType": "Updated"})
    assert (updated.owner, updated.contributors, updated.waits) == ("gateway", (), False)
    assert table.route("2.1", "TransactionEvent", {"eventType": "Ended"}).contributors == ()
    both = Condition(fields=("idToken",), equals=("eventType", "Ended"))
    assert both.holds({"eventType": "Ended", "idToken": {}})
    assert not both.holds({"eventType": "Ended"})
    assert not both.holds({"eventType": "Started", "idToken": {}})
    assert ("TransactionEvent", "2.0.1", "billing", "contributes", "eventType = Ended") in (
        table.rows()
    )


def test_a_condition_travels_as_json_between_replicas_old_and_new() -> None:
    """A new replica reads an old replica's condition (no ``equals``); an old one, whose
    Condition had only ``fields``, reads the new one's ``equals`` as no field: never holds."""
    old_json = '{"fields": ["idToken"]}'
    assert Condition.model_validate_json(old_json) == has("idToken")
    new = equals("eventType", "Ended")
    assert Condition.model_validate_json(new.model_dump_json()) == new
    old_fields = json.loads(new.model_dump_json())["fields"]  # all an old replica reads
    assert old_fields == []  # its holds() was any(name in payload for name in fields)
    announced = Declaration(
        party="billing",
        claims=(
            Claim(action="TransactionEvent", role=Role.CONTRIBUTES, versions=("2.0.1",), when=new),
        ),
    )
    assert Declaration.model_validate_json(announced.model_dump_json()) == announced


def running_cost_registry() -> CallHandlers[None]:
    """Billing's shape: one handler, the final cost waited for in full, the running cost
    (2.1 Updated) for at most 2 s."""
    calls = CallHandlers[None]("billing")
    event_21 = replace(TRANSACTION_EVENT, versions=("2.1",))

    @calls.contributes(TRANSACTION_EVENT, when=equals("eventType", "Ended"))
    @calls.contributes(event_21, when=equals("eventType", "Updated"), wait_s=2.0)
    async def on_transaction_event(ctx: None, request: object) -> dict[str, object]:
        return {"totalCost": 1.0}

    return calls


def test_one_contribution_under_two_conditions_is_two_claims() -> None:
    claims = {(c.versions, c.when, c.wait_s) for c in running_cost_registry().declaration().claims}
    assert claims == {
        (("2.0.1", "2.1"), equals("eventType", "Ended"), None),
        (("2.1",), equals("eventType", "Updated"), 2.0),
    }
    calls = running_cost_registry()
    try:

        @calls.contributes(TRANSACTION_EVENT, when=equals("eventType", "Started"))
        async def another(ctx: None, request: object) -> dict[str, object]:
            return {}

    except ValueError as exc:
        assert "TransactionEvent 2.0.1 has a handler" in str(exc)
    else:
        raise AssertionError("a second handler of one action was registered")


def test_a_bounded_contribution_routes_with_its_budget() -> None:
    """The budget is the contributors' wait when each claim that applies bounds it; one
    contributor waited for in full (or an Ended event) makes it the decision timeout."""
    billing = running_cost_registry().declaration()
    table = table_of([SESSIONS, billing])
    updated = table.route("2.1", "TransactionEvent", {"eventType": "Updated"})
    assert (updated.owner, updated.contributors, updated.budget_s) == ("gateway", ("billing",), 2.0)
    ended = table.route("2.1", "TransactionEvent", {"eventType": "Ended", "idToken": {}})
    assert (ended.owner, ended.contributors, ended.budget_s) == ("sessions", ("billing",), None)
    assert table.route("2.0.1", "TransactionEvent", {"eventType": "Updated"}).contributors == ()
    full = Claim(
        action="TransactionEvent",
        role=Role.CONTRIBUTES,
        versions=("2.1",),
        when=equals("eventType", "Updated"),
    )
    mixed = table_of([billing, Declaration(party="loyalty", claims=(full,))])
    both = mixed.route("2.1", "TransactionEvent", {"eventType": "Updated"})
    assert (both.contributors, both.budget_s) == (("billing", "loyalty"), None)
    assert (
        "TransactionEvent",
        "2.1",
        "billing",
        "contributes",
        "eventType = Updated (waited at most 2 s)",
    ) in table.rows()


def test_a_bounded_wait_travels_as_json_and_an_old_claim_reads_unbounded() -> None:
    bounded = running_cost_registry().declaration()
    assert Declaration.model_validate_json(bounded.model_dump_json()) == bounded
    old_json = '{"action": "Authorize", "role": "contributes", "versions": ["2.0.1"]}'
    assert Claim.model_validate_json(old_json).wait_s is None


def test_the_routing_of_an_unclaimed_call_is_kept_per_table() -> None:
    nobody_claims = table_of([])
    first = nobody_claims.route("2.0.1", "NotifyEVChargingNeeds", {})
    assert first == Routing(NOBODY)
    assert nobody_claims.route("2.0.1", "NotifyEVChargingNeeds", {}) is first
    assert nobody_claims.route("2.0.1", "Heartbeat", {}) == Routing(GATEWAY)
    # A table of the parties alive now (a smart charging replica announced) routes anew.
    announced = table_of([SMARTCHARGING])
    assert announced.route("2.0.1", "NotifyEVChargingNeeds", {}) == Routing("smartcharging")
