"""Which calls a station may send, and who answers each one."""

from datetime import UTC, datetime, timedelta

import pytest

from csms_ocpp import actions, schemas
from csms_ocpp.actions import answers_itself, gateway_response, is_known, is_station_initiated
from csms_ocpp.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
ALL_VERSIONS = tuple(OcppVersion)


@pytest.mark.parametrize(
    ("action", "initiated_in"),
    [
        ("BootNotification", {V16, V201, V21}),
        ("Heartbeat", {V16, V201, V21}),
        ("StatusNotification", {V16, V201, V21}),
        ("StartTransaction", {V16}),
        ("StopTransaction", {V16}),
        ("DiagnosticsStatusNotification", {V16}),
        ("SignCertificate", {V16, V201, V21}),  # 1.6 through the security whitepaper
        ("TransactionEvent", {V201, V21}),
        ("NotifyReport", {V201, V21}),
        ("BatterySwap", {V21}),
        ("NotifyPeriodicEventStream", {V21}),
        ("RemoteStartTransaction", set()),  # CSMS → station in 1.6
        ("RequestStartTransaction", set()),  # CSMS → station in 2.x
        ("Reset", set()),
        ("NoSuchAction", set()),
    ],
)
def test_is_station_initiated(action: str, initiated_in: set[OcppVersion]) -> None:
    for version in ALL_VERSIONS:
        assert is_station_initiated(version, action) is (version in initiated_in), version


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_station_initiated_action_has_a_request_schema(version: OcppVersion) -> None:
    assert all(is_known(version, action) for action in actions.STATION_INITIATED[version])


@pytest.mark.parametrize(
    ("version", "action", "alone"),
    [
        (V16, "BootNotification", False),
        (V201, "BootNotification", False),
        (V21, "Authorize", False),
        (V16, "StartTransaction", False),
        (V16, "StopTransaction", True),  # its answer needs nothing (idTagInfo is optional)
        (V16, "DataTransfer", False),
        (V201, "TransactionEvent", True),  # only an idToken asks for a decision
        (V16, "Heartbeat", True),  # the current time, no decision
        (V201, "Heartbeat", True),
        (V16, "StatusNotification", True),
        (V201, "MeterValues", True),
        (V201, "NotifyEvent", True),
        (V21, "NotifyPeriodicEventStream", True),  # SEND: nothing to answer
        (V16, "SignCertificate", False),
        (V201, "GetCertificateStatus", False),
        (V21, "GetCertificateChainStatus", False),
        (V201, "SecurityEventNotification", True),  # its answer is empty
        (V21, "VatNumberValidation", False),
    ],
)
def test_answers_itself(version: OcppVersion, action: str, alone: bool) -> None:
    """Who decides the others is the services' declaration (tests/test_call_declarations.py)."""
    assert answers_itself(version, action) is alone
    assert answers_itself(version.number, action) is alone


@pytest.mark.parametrize(
    ("version", "action"),
    [
        (version, action)
        for version in ALL_VERSIONS
        for action in sorted(actions.STATION_INITIATED[version])
        if answers_itself(version, action) and schemas.has_schema(version, action, response=True)
    ],
)
def test_the_gateways_own_answers_conform_to_the_response_schema(
    version: OcppVersion, action: str
) -> None:
    response = gateway_response(action)
    assert schemas.validate(version, action, response, response=True) is None


def test_heartbeat_answer_is_the_current_utc_time_in_milliseconds() -> None:
    before = datetime.now(UTC)
    response = gateway_response("Heartbeat")
    after = datetime.now(UTC)

    assert list(response) == ["currentTime"]
    current_time: str = response["currentTime"]
    assert current_time.endswith("Z")
    assert len(current_time) == len("2024-01-01T00:00:00.000Z")
    sent = datetime.fromisoformat(current_time)
    assert before - timedelta(milliseconds=1) <= sent <= after


@pytest.mark.parametrize("action", ["StatusNotification", "MeterValues", "NotifyEvent"])
def test_other_gateway_answers_are_empty(action: str) -> None:
    assert gateway_response(action) == {}
