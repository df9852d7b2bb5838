"""CA certificates on stations: install, list and delete per version, with each version's
names (OCPP 2.0.1 M01-M05, M12-M21; 1.6 whitepaper TC_075/TC_076)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csms_security.certificates.models import InventoryRefresh
from csms_security.db import utc_now
from tests.pki import TestCa, pem
from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call
from tests.waiting import eventually


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(tmp_path) as running:
        yield running


@asynccontextmanager
async def booted(csms: Csms, station_id: str, version: str) -> AsyncIterator[StationState]:
    state = StationState(station_id, ORGANIZATION)
    tls = state.tls(csms.server_trust(), with_certificate=False)
    async with secure_station(csms.wss_url, state, version, tls=tls) as station:
        await station.call(boot_call(version))
        yield state


async def install(csms: Csms, station_id: str, certificate_type: str, certificate: str) -> Any:
    return await csms.api.post(
        f"/stations/{station_id}/certificates/installed",
        json={"certificate_type": certificate_type, "certificate": certificate},
    )


@pytest.mark.parametrize(
    ("version", "rest_name", "wire_name"),
    [
        ("1.6", "CSMSRootCertificate", "CentralSystemRootCertificate"),  # TC_075_2
        ("1.6", "CentralSystemRootCertificate", "CentralSystemRootCertificate"),
        ("1.6", "ManufacturerRootCertificate", "ManufacturerRootCertificate"),  # TC_075_1
        ("2.0.1", "CSMSRootCertificate", "CSMSRootCertificate"),  # TC_M_01
        ("2.0.1", "ManufacturerRootCertificate", "ManufacturerRootCertificate"),  # TC_M_02
        ("2.0.1", "V2GRootCertificate", "V2GRootCertificate"),  # TC_M_03
        ("2.0.1", "MORootCertificate", "MORootCertificate"),  # TC_M_04
        ("2.1", "OEMRootCertificate", "OEMRootCertificate"),
        ("2.1", "CentralSystemRootCertificate", "CSMSRootCertificate"),
    ],
)
async def test_tc_m_01_to_04_tc_075_install_list_delete(
    csms: Csms, version: str, rest_name: str, wire_name: str
) -> None:
    station_id = f"CP-INST-{version}".replace(".", "")
    root = TestCa.root(f"{rest_name} of the test")
    async with booted(csms, station_id, version) as state:
        response = await install(csms, station_id, rest_name, pem(root.certificate))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        assert state.received[0] == ("InstallCertificate", {"certificate_type": wire_name})
        listed = (await csms.api.get(f"/stations/{station_id}/certificates/installed")).json()
        assert [item["certificate_type"] for item in listed] == [wire_name]
        assert listed[0]["serial_number"] == format(root.certificate.serial_number, "x")
        deleted = await csms.api.delete(
            f"/stations/{station_id}/certificates/installed/{listed[0]['id']}"
        )
        assert deleted.json()["status"] == "Accepted"
        assert state.installed[wire_name] == []
        after = (await csms.api.get(f"/stations/{station_id}/certificates/installed")).json()
        assert after == []


@pytest.mark.parametrize(
    ("version", "rest_name"),
    [
        ("1.6", "V2GRootCertificate"),
        ("1.6", "MORootCertificate"),
        ("2.0.1", "OEMRootCertificate"),  # 2.1 only
    ],
)
async def test_a_type_the_version_lacks_is_422(csms: Csms, version: str, rest_name: str) -> None:
    station_id = f"CP-NOTYPE-{version}".replace(".", "")
    async with booted(csms, station_id, version) as state:
        response = await install(csms, station_id, rest_name, pem(TestCa.root().certificate))
    assert response.status_code == 422
    assert response.json()["type"] == "urn:csms:problem:not-in-this-ocpp-version"
    assert state.received == []  # nothing was sent


async def test_tc_m_05_install_failed_is_reported(csms: Csms) -> None:
    async with booted(csms, "CP-M05", "2.0.1"):
        bad = await install(csms, "CP-M05", "CSMSRootCertificate", "not a certificate")
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:csms:problem:invalid-certificate"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_tc_m_18_tc_m_19_refresh_lists_every_type(csms: Csms, version: str) -> None:
    station_id = f"CP-LIST-{version}".replace(".", "")
    async with booted(csms, station_id, version) as state:
        empty = await csms.api.post(f"/stations/{station_id}/certificates/installed/refresh")
        assert {answer["status"] for answer in empty.json()} == {"NotFound"}  # TC_M_19
        manufacturer = TestCa.root("Manufacturer")
        state.installed["ManufacturerRootCertificate"] = [manufacturer.certificate]
        csms_name = "CentralSystemRootCertificate" if version == "1.6" else "CSMSRootCertificate"
        state.installed[csms_name] = [TestCa.root("CSMS root").certificate]
        refreshed = await csms.api.post(f"/stations/{station_id}/certificates/installed/refresh")
        assert refreshed.status_code == 200
    # 1.6 takes one certificateType per request: one call per type.
    asked = [
        payload for action, payload in state.received if action == "GetInstalledCertificateIds"
    ]
    if version == "1.6":
        assert asked[-2:] == [
            {"certificate_type": "CentralSystemRootCertificate"},
            {"certificate_type": "ManufacturerRootCertificate"},
        ]
    else:
        assert asked[-1] == {"certificate_type": None}  # no type: all of them
    listed = (await csms.api.get(f"/stations/{station_id}/certificates/installed")).json()
    assert sorted(item["certificate_type"] for item in listed) == sorted(
        [csms_name, "ManufacturerRootCertificate"]
    )


async def test_tc_m_21_delete_of_an_unknown_entry_is_404(csms: Csms) -> None:
    async with booted(csms, "CP-M21", "2.0.1"):
        response = await csms.api.delete("/stations/CP-M21/certificates/installed/abcdef0123")
    assert response.status_code == 404


async def test_commands_to_an_offline_station_are_409(csms: Csms) -> None:
    response = await install(
        csms, "CP-OFFLINE", "CSMSRootCertificate", pem(TestCa.root().certificate)
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:csms:problem:station-offline"


async def test_the_list_is_asked_for_at_boot_when_it_is_stale(tmp_path: Path) -> None:
    async with running_csms(tmp_path, security={"inventory_max_age_s": 3600}) as csms:
        # A station that never did certificates with us is not asked on its own.
        async with booted(csms, "CP-KEEP", "2.0.1") as state:
            assert await csms.security.inventory.refresh_if_stale("CP-KEEP") is False
            refreshed = await csms.api.post("/stations/CP-KEEP/certificates/installed/refresh")
            assert refreshed.status_code == 200
        await _age_inventory(csms, "CP-KEEP", hours=2)
        async with booted(csms, "CP-KEEP", "2.0.1") as state:
            state.installed["V2GRootCertificate"] = [TestCa.root("V2G root").certificate]

            async def listed() -> list[dict[str, Any]] | None:
                body = (await csms.api.get("/stations/CP-KEEP/certificates/installed")).json()
                return body or None

            (entry,) = await eventually(listed)  # asked at boot: the list was two hours old
            assert entry["certificate_type"] == "V2GRootCertificate"
            # Within the hour the list is fresh: nobody asks again.
            assert await csms.security.inventory.refresh_if_stale("CP-KEEP") is False


async def _age_inventory(csms: Csms, station_id: str, *, hours: float) -> None:
    async with csms.security.factory() as session, session.begin():
        state = await session.get(InventoryRefresh, station_id)
        assert state is not None
        state.refreshed_at = utc_now() - timedelta(hours=hours)
        session.add(state)


async def test_hash_data_a_station_reports_in_base64_is_kept_as_sent(csms: Csms) -> None:
    """OCPP asks for hexadecimal hashes; a station reporting base64 ones is listed as it
    reported them, and DeleteCertificate names the certificate the station's way."""
    async with booted(csms, "CP-B64", "2.0.1") as state:
        state.base64_hashes = True
        root = TestCa.root("Base64 root")
        state.installed["CSMSRootCertificate"] = [root.certificate]
        refreshed = await csms.api.post("/stations/CP-B64/certificates/installed/refresh")
        assert refreshed.status_code == 200, refreshed.text
        [listed] = (await csms.api.get("/stations/CP-B64/certificates/installed")).json()
        (_, reported), *_ = state.hash_list(None)
        assert listed["issuer_name_hash"] == reported["issuerNameHash"]  # base64, as sent
        deleted = await csms.api.delete(f"/stations/CP-B64/certificates/installed/{listed['id']}")
        assert deleted.json()["status"] == "Accepted"
    [(_, asked)] = [item for item in state.received if item[0] == "DeleteCertificate"]
    assert asked["certificate_hash_data"]["issuer_name_hash"] == reported["issuerNameHash"]
    assert state.installed["CSMSRootCertificate"] == []
