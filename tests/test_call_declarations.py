"""Who answers a station's CALL: the services' registrations against the checked-in table.

Each service registers its handlers where they are defined (``@calls.decides(...)``);
``csms_core.calls.declared`` writes the same down once. These tests fail when the two
differ (a call declared as decided with no handler, or a handler deciding a call the
table does not name), when two parties decide one CALL, and when a CALL whose answer
needs a decision is decided by nobody without being named as such.
"""

from typing import Any

import pytest

import csms_billing.consumer  # noqa: F401 - the consumers import every handler
import csms_security.consumer  # noqa: F401
import csms_sessions.consumer  # noqa: F401
import csms_smartcharging.consumer  # noqa: F401
from csms_billing.inbound import calls as billing_calls
from csms_core.calls import CallHandlers, Claim, Declaration, Role, table_of
from csms_core.calls.declared import DECLARED, SESSIONS, UNDECIDED
from csms_ocpp.actions import STATION_INITIATED, answers_itself
from csms_ocpp.messages import BOOT_NOTIFICATION, HEARTBEAT, BootNotificationRequest
from csms_ocpp.versions import OcppVersion
from csms_security.context import calls as security_calls
from csms_sessions.context import calls as sessions_calls
from csms_smartcharging.context import calls as smartcharging_calls

REGISTRIES: dict[str, CallHandlers[Any]] = {
    "sessions": sessions_calls,
    "smartcharging": smartcharging_calls,
    "security": security_calls,
    "billing": billing_calls,
}


def differences(declared: Declaration, registered: Declaration) -> list[str]:
    """What one side claims and the other does not, one line each."""
    split_declared, split_registered = _by_version(declared), _by_version(registered)
    return [
        f"declared, no handler: {claim}" for claim in sorted(split_declared - split_registered)
    ] + [f"handler, not declared: {claim}" for claim in sorted(split_registered - split_declared)]


def _by_version(declaration: Declaration) -> set[tuple[str, str, str, str]]:
    return {
        (claim.action, version, claim.role.value, _terms(claim))
        for claim in declaration.claims
        for version in claim.versions
    }


def _terms(claim: Claim) -> str:
    """The claim's condition, and its bounded wait if any (a wait differs: a difference)."""
    return repr(claim.when) + ("" if claim.wait_s is None else f" within {claim.wait_s} s")


@pytest.mark.parametrize("declared", DECLARED, ids=lambda d: d.party)
def test_the_table_is_what_the_services_register(declared: Declaration) -> None:
    registered = REGISTRIES[declared.party].declaration()
    assert differences(declared, registered) == []


def test_every_registry_is_in_the_table() -> None:
    assert sorted(REGISTRIES) == sorted(d.party for d in DECLARED)


def test_a_handler_missing_or_undeclared_is_found() -> None:
    """The comparison above can fail: one handler too few, one too many."""
    calls = CallHandlers[None]("sessions")

    @calls.decides(BOOT_NOTIFICATION)
    async def on_boot(ctx: None, request: BootNotificationRequest) -> Any:
        return {}

    @calls.decides(HEARTBEAT)
    async def on_heartbeat(ctx: None, request: Any) -> Any:
        return {}

    found = differences(SESSIONS, calls.declaration())
    assert "declared, no handler: ('Authorize', '1.6', 'decides', 'None')" in found
    assert "handler, not declared: ('Heartbeat', '2.0.1', 'decides', 'None')" in found
    assert not any("BootNotification', '2.0.1'" in line for line in found)


def test_a_call_has_one_decider_per_version() -> None:
    deciders: dict[tuple[str, str], list[str]] = {}
    for declaration in DECLARED:
        for claim in declaration.claims:
            if claim.role is Role.DECIDES:
                for version in claim.versions:
                    deciders.setdefault((claim.action, version), []).append(declaration.party)
    assert {key: parties for key, parties in deciders.items() if len(parties) > 1} == {}


@pytest.mark.parametrize("version", list(OcppVersion), ids=lambda v: v.number)
def test_every_call_that_needs_a_decision_is_decided(version: OcppVersion) -> None:
    """A station CALL whose answer needs a decision has a decider, or is named undecided
    (answered NotSupported); a declared claim is one a station may send in that version."""
    decided = {
        claim.action
        for declaration in DECLARED
        for claim in declaration.claims
        if claim.role is Role.DECIDES and version.number in claim.versions
    }
    undecided = {action for action, versions in UNDECIDED.items() if version.number in versions}
    needs = {a for a in STATION_INITIATED[version] if not answers_itself(version, a)}
    assert needs - decided == undecided
    claimed = {
        claim.action
        for declaration in DECLARED
        for claim in declaration.claims
        if version.number in claim.versions
    }
    assert claimed <= STATION_INITIATED[version]


def test_the_gateway_routes_by_the_table() -> None:
    table = table_of(DECLARED)
    assert table.route("1.6", "BootNotification", {}).owner == "sessions"
    assert table.route("2.0.1", "TransactionEvent", {"idToken": {}}).owner == "sessions"
    updated = table.route("2.0.1", "TransactionEvent", {"eventType": "Updated"})
    assert (updated.owner, updated.contributors) == ("gateway", ())
    for version in ("2.0.1", "2.1"):  # billing's final cost on Ended, waited for in full
        ended = table.route(version, "TransactionEvent", {"eventType": "Ended", "idToken": {}})
        assert (ended.owner, ended.contributors, ended.budget_s) == ("sessions", ("billing",), None)
        bare = table.route(version, "TransactionEvent", {"eventType": "Ended"})
        assert (bare.owner, bare.contributors) == ("gateway", ("billing",))
    for event_type in ("Started", "Updated"):  # 2.1's running cost and limit: 2 s at most
        running = table.route("2.1", "TransactionEvent", {"eventType": event_type})
        assert (running.owner, running.contributors, running.budget_s) == (
            "gateway",
            ("billing",),
            2.0,
        )
        plain = table.route("2.0.1", "TransactionEvent", {"eventType": event_type})
        assert (plain.owner, plain.contributors) == ("gateway", ())
    assert table.route("2.0.1", "NotifyEVChargingNeeds", {}).owner == "smartcharging"
    assert table.route("2.1", "VatNumberValidation", {}).owner == "billing"
    assert table.route("2.1", "PullDynamicScheduleUpdate", {}).owner == "nobody"
    pnc = table.route("2.0.1", "Authorize", {"idToken": {}, "certificate": "PEM"})
    assert (pnc.owner, pnc.contributors) == ("sessions", ("security",))
    plain = table.route("2.0.1", "Authorize", {"idToken": {}})
    assert (plain.owner, plain.contributors) == ("sessions", ())
    tariffed = table.route("2.1", "Authorize", {"idToken": {}})  # the driver's tariff
    assert (tariffed.owner, tariffed.contributors, tariffed.budget_s) == (
        "sessions",
        ("billing",),
        2.0,
    )
    both = table.route("2.1", "Authorize", {"idToken": {}, "certificate": "PEM"})
    assert (both.contributors, both.budget_s) == (("billing", "security"), None)
