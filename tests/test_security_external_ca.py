"""An external CA over EST (RFC 7030) on loopback signs the stations' certificates, and a
rotated local CA makes every station renew (docs/station-security.md)."""

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from csms_security.authority.ca import load_or_create_authority
from tests.pki import EstServer, TestCa, pem, serving
from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call, heartbeat_call
from tests.waiting import eventually


async def active(csms: Csms, station_id: str) -> list[dict[str, Any]] | None:
    body = (await csms.api.get(f"/stations/{station_id}/certificates")).json()
    return [item for item in body["items"] if item["status"] == "active"] or None


async def test_tc_a_11_an_est_ca_signs_and_its_certificate_opens_profile_3(tmp_path: Path) -> None:
    root = TestCa.root("External Root", ORGANIZATION)
    sub = root.sub_ca("External Station CA", ORGANIZATION)
    est = EstServer(sub, credentials=("csms", "est-password"))
    # The gateway trusts the external root: the sub-CA comes with each station's chain.
    trust = tmp_path / "external-root.pem"
    trust.write_text(pem(root.certificate))
    async with serving(est.app) as url:
        settings = {
            "est_url": url + est.path,
            "est_username": "csms",
            "est_password": "est-password",
        }
        async with running_csms(tmp_path, security=settings, station_ca_file=trust) as csms:
            assert not (tmp_path / "ca").exists()  # no local CA when an external one signs
            state = StationState("CP-EST", ORGANIZATION)
            tls = state.tls(csms.server_trust(), with_certificate=False)
            async with secure_station(csms.wss_url, state, "2.0.1", tls=tls) as station:
                await station.call(boot_call("2.0.1"))
                await station.sign("ChargingStationCertificate")
                (issued,) = await eventually(lambda: active(csms, "CP-EST"))
            chain = x509.load_pem_x509_certificates((state.chain_pem or "").encode())
            assert chain[1] == sub.certificate  # leaf, then the sub-CA; the root stays out
            assert issued["signer"] == "est"
            tls = state.tls(csms.server_trust(), with_certificate=True)
            async with secure_station(csms.wss_url, state, "2.0.1", tls=tls) as station:
                await station.call(heartbeat_call("2.0.1"))
            served = await csms.api.get("/certificates/ca")
            assert x509.load_pem_x509_certificates(served.content) == [sub.certificate]
    assert len(est.enrolled) == 1


async def test_a_rotated_ca_has_every_station_renew(tmp_path: Path) -> None:
    state = StationState("CP-ROTATE", ORGANIZATION)
    async with running_csms(tmp_path) as csms:
        tls = state.tls(csms.server_trust(), with_certificate=False)
        async with secure_station(csms.wss_url, state, "2.0.1", tls=tls) as station:
            await station.call(boot_call("2.0.1"))
            await station.sign("ChargingStationCertificate")
            await eventually(lambda: active(csms, "CP-ROTATE"))
        old_ca = csms.ca_file.read_text()
    first = state.certificate()
    # The operator makes a new CA and lets the gateways trust the old and the new one.
    shutil.rmtree(tmp_path / "ca")
    new = load_or_create_authority(tmp_path / "ca", ORGANIZATION, timedelta(days=3650))
    bundle = tmp_path / "both-cas.pem"
    bundle.write_text(old_ca + pem(new.certificate))
    async with running_csms(tmp_path, station_ca_file=bundle) as csms:
        tls = state.tls(csms.server_trust(), with_certificate=True)  # the old one still works
        async with secure_station(csms.wss_url, state, "2.0.1", tls=tls) as station:
            # Accepted at boot, the station is due at once: its certificate is of another CA.
            await station.call(boot_call("2.0.1"))

            async def renewed() -> bool:
                body = (await csms.api.get("/stations/CP-ROTATE/certificates")).json()
                return [item["status"] for item in body["items"]] == ["active", "superseded"]

            await eventually(renewed)
    triggers = [payload for action, payload in state.received if action == "TriggerMessage"]
    assert triggers == [{"requested_message": "SignChargingStationCertificate"}]
    renewed_certificate = state.certificate()
    renewed_certificate.verify_directly_issued_by(new.certificate)
    assert renewed_certificate.serial_number != first.serial_number
