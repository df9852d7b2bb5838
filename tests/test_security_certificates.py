"""Station certificates end to end: CSR → CertificateSigned → security profile 3 with it,
per version, against a real gateway with real TLS and the ``ocpp`` package's stations."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ocpp.v16
import ocpp.v21
import ocpp.v201
import pytest
from cryptography import x509
from sqlalchemy import update

from csms_core import topics
from csms_core.db import session_factory
from csms_security.certificates.models import StationCertificate
from csms_security.context import SECURITY_EVENTS
from tests.pki import csr_pem, rsa_key, tampered_csr_pem
from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call, heartbeat_call
from tests.waiting import eventually

PASSWORD = "station-password-0123"


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(tmp_path) as running:
        yield running


def opened_profiles(csms: Csms, station_id: str) -> list[int]:
    return [
        record["data"]["security_profile"]
        for record in csms.published(topics.OCPP_CONNECTIONS, "ocpp.connection.opened")
        if record["station_id"] == station_id
    ]


@pytest.mark.parametrize(
    ("version", "case"), [("1.6", "tc_074"), ("2.0.1", "tc_a_11"), ("2.1", "tc_a_11")]
)
async def test_tc_a_11_tc_074_csr_round_trip_ends_in_a_profile_3_connection(
    csms: Csms, version: str, case: str
) -> None:
    station_id = f"CP-{case}-{version}".replace(".", "")
    await csms.identities.save(station_id, password=PASSWORD)
    state = StationState(station_id, ORGANIZATION)
    tls = state.tls(csms.server_trust(), with_certificate=False)
    async with secure_station(csms.wss_url, state, version, password=PASSWORD, tls=tls) as station:
        await station.call(boot_call(version))
        answer = await csms.api.post(f"/stations/{station_id}/certificates/renew")
        assert answer.status_code == 200, answer.text
        await eventually(lambda: active(csms, station_id))
    assert opened_profiles(csms, station_id) == [2]
    # The certificate the CSMS issued opens profile 3 (mutual TLS, no password).
    tls = state.tls(csms.server_trust(), with_certificate=True)
    async with secure_station(csms.wss_url, state, version, tls=tls) as station:
        await station.call(heartbeat_call(version))
    assert opened_profiles(csms, station_id) == [2, 3]
    issued = (await csms.api.get(f"/stations/{station_id}/certificates")).json()
    assert [item["status"] for item in issued["items"]] == ["active"]
    assert issued["items"][0]["serial"] == format(state.certificate().serial_number, "x")


async def active(csms: Csms, station_id: str) -> list[dict[str, Any]] | None:
    """The station's certificates the CSMS knows it accepted (None while there are none)."""
    body = (await csms.api.get(f"/stations/{station_id}/certificates")).json()
    return [item for item in body["items"] if item["status"] == "active"] or None


async def _signed(state: StationState) -> bool:
    return state.certificate_signed.is_set()


@asynccontextmanager
async def booted(csms: Csms, state: StationState, version: str) -> AsyncIterator[Any]:
    """A station on wss:// (it trusts the gateway), booted and accepted."""
    tls = state.tls(csms.server_trust(), with_certificate=False)
    async with secure_station(csms.wss_url, state, version, tls=tls) as station:
        await station.call(boot_call(version))
        yield station


def signed_calls(state: StationState) -> list[dict[str, Any]]:
    return [payload for action, payload in state.received if action == "CertificateSigned"]


@pytest.mark.parametrize(
    ("certificate_type", "common_name"),
    [
        ("V2GCertificate", "DE*TST*E0001"),  # TC_A_12: a V2G certificate names the SECC
        (None, None),  # TC_A_13: no type means both (and CertificateSigned names none)
        ("ChargingStationCertificate", None),
    ],
    ids=["tc_a_12_v2g", "tc_a_13_combined", "charging_station"],
)
async def test_tc_a_12_tc_a_13_certificate_types(
    csms: Csms, certificate_type: str | None, common_name: str | None
) -> None:
    state = StationState("CP-TYPES", ORGANIZATION, common_name=common_name)
    async with booted(csms, state, "2.0.1") as station:
        response = await station.sign(certificate_type)
        assert response.status == "Accepted"
        await eventually(lambda: active(csms, "CP-TYPES"))
    (signed,) = signed_calls(state)
    assert signed.get("certificate_type") == certificate_type
    issued = (await csms.api.get("/stations/CP-TYPES/certificates")).json()["items"]
    assert issued[0]["certificate_use"] == (certificate_type or "Combined")


async def test_2_1_echoes_the_request_id(csms: Csms) -> None:
    state = StationState("CP-REQ-ID", ORGANIZATION)
    async with booted(csms, state, "2.1") as station:
        request = ocpp.v21.call.SignCertificate(csr=state.csr(), request_id=42)
        assert (await station.call(request)).status == "Accepted"
        await eventually(lambda: active(csms, "CP-REQ-ID"))
    assert signed_calls(state)[0]["request_id"] == 42


# What each bad CSR is answered with (2.x statusInfo.reasonCode; 1.6 has Rejected only).
BAD_CSRS = {
    "cn-mismatch": "InvalidCommonName",
    "weak-key": "WeakKey",
    "bad-signature": "InvalidSignature",
    "garbage-pem": "InvalidCSR",
    "other-organization": "InvalidOrganization",
}


def bad_csr(station_id: str, kind: str) -> str:
    if kind == "cn-mismatch":
        return csr_pem("CP-SOMEONE-ELSE", ORGANIZATION)
    if kind == "weak-key":
        return csr_pem(station_id, ORGANIZATION, rsa_key(1024))
    if kind == "bad-signature":
        return tampered_csr_pem(station_id, ORGANIZATION)
    if kind == "other-organization":
        return csr_pem(station_id, "Another CPO")
    return "-----BEGIN CERTIFICATE REQUEST-----\nbm9uc2Vuc2U=\n-----END CERTIFICATE REQUEST-----"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_tc_a_14_bad_csrs_are_rejected_and_recorded(csms: Csms, version: str) -> None:
    """TC_A_14 (2.x) and the 1.6 whitepaper's SignCertificate Rejected: CN mismatch, weak key,
    bad signature, garbage PEM and another organisation, each over the wire."""
    station_id = f"CP-BAD-{version}".replace(".", "")
    state = StationState(station_id, ORGANIZATION)
    module = {"1.6": ocpp.v16, "2.0.1": ocpp.v201, "2.1": ocpp.v21}[version]
    answers = {}
    async with booted(csms, state, version) as station:
        for kind in BAD_CSRS:
            csr = bad_csr(station_id, kind)
            answers[kind] = await station.call(module.call.SignCertificate(csr=csr))
    for kind, answer in answers.items():
        assert answer.status == "Rejected", kind
        if version != "1.6":  # statusInfo is 2.x only
            assert answer.status_info["reason_code"] == BAD_CSRS[kind], kind
    assert not signed_calls(state)
    events = (await csms.api.get(f"/stations/{station_id}/security-events")).json()
    assert [event["type"] for event in events["items"]] == ["CsrRejected"] * len(BAD_CSRS)
    assert {event["source"] for event in events["items"]} == {"csms"}
    requests = (await csms.api.get(f"/stations/{station_id}/certificates/signing-requests")).json()
    assert [item["status"] for item in requests["items"]] == ["rejected"] * len(BAD_CSRS)


@pytest.mark.parametrize(("version", "certificate_type", "trigger"), [
    ("1.6", None, ("ExtendedTriggerMessage", "SignChargePointCertificate")),
    ("2.0.1", "ChargingStationCertificate", ("TriggerMessage", "SignChargingStationCertificate")),
    ("2.1", "ChargingStationCertificate", ("TriggerMessage", "SignChargingStationCertificate")),
    ("2.0.1", "V2GCertificate", ("TriggerMessage", "SignV2GCertificate")),
    ("2.1", None, ("TriggerMessage", "SignCombinedCertificate")),
], ids=["tc_074", "tc_a_11-2.0.1", "tc_a_11-2.1", "tc_a_12-v2g", "tc_a_13-combined"])  # fmt: skip
async def test_tc_a_11_tc_a_12_tc_a_13_tc_074_renewal_is_asked_for_before_expiry(
    csms: Csms, version: str, certificate_type: str | None, trigger: tuple[str, str]
) -> None:
    """Before a certificate expires the station is asked for a CSR of the same kind; the
    new certificate replaces the old (2.0.1 A02 with TriggerMessage; 1.6 whitepaper A02
    with ExtendedTriggerMessage)."""
    station_id = f"CP-RENEW-{version}-{certificate_type or 'both'}".replace(".", "")
    common_name = "DE*TST*E0002" if certificate_type == "V2GCertificate" else None
    state = StationState(station_id, ORGANIZATION, common_name=common_name)
    async with booted(csms, state, version) as station:
        await station.sign(certificate_type)
        await eventually(lambda: active(csms, station_id))
        first = state.certificate()
        state.certificate_signed.clear()
        # 340 days on, the 365-day certificate is within the 30 days before its expiry.
        later = datetime.now(UTC) + timedelta(days=340)
        assert await csms.security.renewals.check_once(now=later - timedelta(days=30)) == []
        asked = await csms.security.renewals.check_once(now=later)
        assert asked == [format(first.serial_number, "x")]
        await eventually(lambda: _superseded(csms, station_id))
        # The new certificate is not due; the old one is superseded.
        assert await csms.security.renewals.check_once(now=later - timedelta(days=30)) == []
    action, requested = trigger
    triggers = [payload for name, payload in state.received if name == action]
    assert triggers == [{"requested_message": requested}]
    assert state.certificate().serial_number != first.serial_number
    issued = (await csms.api.get(f"/stations/{station_id}/certificates")).json()["items"]
    assert [item["status"] for item in issued] == ["active", "superseded"]
    assert {item["certificate_use"] for item in issued} == {
        certificate_type or ("ChargingStationCertificate" if version == "1.6" else "Combined")
    }


async def test_tc_a_11_a_station_offline_when_due_is_asked_at_its_next_boot(
    csms: Csms,
) -> None:
    """A check that finds the station offline leaves the renewal open (it is not held back
    for the retry period); the station's next accepted boot (station.booted) is when it is
    asked."""
    state = StationState("CP-RENEW-BOOT", ORGANIZATION)
    async with booted(csms, state, "2.0.1") as station:
        await station.sign("ChargingStationCertificate")
        await eventually(lambda: active(csms, "CP-RENEW-BOOT"))
    first = state.certificate()
    await eventually(lambda: _offline(csms, "CP-RENEW-BOOT"))
    # Time passes: the certificate now expires within CSMS_SECURITY_RENEW_BEFORE_DAYS.
    await _expire_within(csms, days=10)
    assert await csms.security.renewals.check_once() == []  # due, but nobody to ask
    async with booted(csms, state, "2.0.1"):
        await eventually(lambda: _superseded(csms, "CP-RENEW-BOOT"))
    triggers = [payload for name, payload in state.received if name == "TriggerMessage"]
    assert triggers == [{"requested_message": "SignChargingStationCertificate"}]
    assert state.certificate().serial_number != first.serial_number


async def _expire_within(csms: Csms, days: int) -> None:
    assert csms.engine is not None
    async with session_factory(csms.engine)() as session, session.begin():
        await session.exec(
            update(StationCertificate).values(not_after=datetime.now(UTC) + timedelta(days=days))
        )


async def _offline(csms: Csms, station_id: str) -> bool:
    return await csms.security.router.lookup(station_id) is None


async def _superseded(csms: Csms, station_id: str) -> bool:
    body = (await csms.api.get(f"/stations/{station_id}/certificates")).json()
    return [item["status"] for item in body["items"]] == ["active", "superseded"]


async def test_a_certificate_the_station_refuses_is_recorded(csms: Csms) -> None:
    state = StationState("CP-REFUSES", ORGANIZATION, refuse_certificates=True)
    async with booted(csms, state, "2.0.1") as station:
        await station.sign("ChargingStationCertificate")

        async def refused() -> list[dict[str, Any]] | None:
            body = (await csms.api.get("/stations/CP-REFUSES/certificates")).json()
            return [item for item in body["items"] if item["status"] == "rejected"] or None

        await eventually(refused)
    events = (await csms.api.get("/stations/CP-REFUSES/security-events")).json()["items"]
    assert [event["type"] for event in events] == ["CertificateRejectedByStation"]
    rejected = csms.published(SECURITY_EVENTS, "certificate.rejected")
    assert rejected[0]["station_id"] == "CP-REFUSES"


async def test_the_ca_certificate_is_downloadable(csms: Csms) -> None:
    response = await csms.api.get("/certificates/ca")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pem-file"
    assert response.text == csms.ca_file.read_text()
    (ca,) = x509.load_pem_x509_certificates(response.content)
    organizations = ca.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert organizations[0].value == ORGANIZATION


async def test_certificate_listing_filters_and_pages(csms: Csms) -> None:
    for index in range(3):
        state = StationState(f"CP-LIST-{index}", ORGANIZATION)
        async with booted(csms, state, "2.0.1") as station:
            await station.sign("ChargingStationCertificate")
            await eventually(lambda index=index: active(csms, f"CP-LIST-{index}"))  # type: ignore[misc]
    page = (await csms.api.get("/certificates", params={"limit": 2})).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    one = (await csms.api.get("/certificates", params={"station_id": "CP-LIST-1"})).json()
    assert [item["station_id"] for item in one["items"]] == ["CP-LIST-1"]
    detail = (await csms.api.get(f"/certificates/{one['items'][0]['serial']}")).json()
    assert "BEGIN CERTIFICATE" in detail["certificate_pem"]
    missing = await csms.api.get("/certificates/abcdef")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    too_many = await csms.api.get("/certificates", params={"limit": 100000})
    assert too_many.status_code == 422
