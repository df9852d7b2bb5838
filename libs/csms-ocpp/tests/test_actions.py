"""Which calls a station may send, and who answers each one."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csms_ocpp import actions, schemas
from csms_ocpp.actions import Owner, gateway_response, is_known, is_station_initiated, owner
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
    ("version", "action", "payload", "expected"),
    [
        (V16, "BootNotification", {}, Owner.SESSIONS),
        (V201, "BootNotification", {}, Owner.SESSIONS),
        (V21, "Authorize", {}, Owner.SESSIONS),
        (V16, "StartTransaction", {}, Owner.SESSIONS),
        (V16, "StopTransaction", {}, Owner.SESSIONS),
        (V16, "DataTransfer", {}, Owner.SESSIONS),
        (V201, "TransactionEvent", {"idToken": {"idToken": "04A1"}}, Owner.SESSIONS),
        (V201, "TransactionEvent", {"eventType": "Updated"}, Owner.GATEWAY),
        (V21, "TransactionEvent", {"eventType": "Ended"}, Owner.GATEWAY),
        (V16, "Heartbeat", {}, Owner.GATEWAY),
        (V201, "Heartbeat", {}, Owner.GATEWAY),
        (V16, "StatusNotification", {}, Owner.GATEWAY),
        (V201, "MeterValues", {}, Owner.GATEWAY),
        (V201, "NotifyEvent", {}, Owner.GATEWAY),
        (V21, "NotifyPeriodicEventStream", {}, Owner.GATEWAY),  # SEND: nothing to answer
        (V16, "SignCertificate", {}, Owner.SECURITY),
        (V201, "GetCertificateStatus", {}, Owner.SECURITY),
        (V21, "GetCertificateChainStatus", {}, Owner.SECURITY),
        (V201, "SecurityEventNotification", {}, Owner.GATEWAY),  # its answer is empty
        (V21, "VatNumberValidation", {}, Owner.NOBODY),
    ],
)
def test_owner(version: OcppVersion, action: str, payload: dict[str, Any], expected: Owner) -> None:
    assert owner(version, action, payload) is expected


@pytest.mark.parametrize(
    ("version", "action"),
    [
        (version, action)
        for version in ALL_VERSIONS
        for action in sorted(actions.STATION_INITIATED[version])
        if owner(version, action, {}) is Owner.GATEWAY
        and schemas.has_schema(version, action, response=True)
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
