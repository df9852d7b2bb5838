"""Raising a station's security profile 1 → 2 → 3 over OCPP (2.0.1 A05 / TC_A_19; the 1.6
security whitepaper / TC_083, a case of the OCTT 1.6 2025 trial edition, not of the
FINAL 2024-04 list in ../shared/conformance), with the ``ocpp`` package's stations
and real TLS: the station is reconfigured and reset, reconnects with the new profile, and
the upgrade completes; the old profiles are then refused at the handshake."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call
from tests.waiting import eventually

PASSWORD = "station-password-0123"


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(tmp_path, security={"csms_url": "wss://csms.example/ocpp/"}) as csms:
        yield csms


async def upgrade(csms: Csms, station_id: str, target: int) -> dict[str, Any]:
    response = await csms.api.post(
        f"/stations/{station_id}/security-profile/upgrades", json={"target_profile": target}
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def upgrade_state(
    csms: Csms, station_id: str, wanted: str, connected_profile: int | None = None
) -> dict[str, Any] | None:
    """The station's profile view once its latest upgrade is ``wanted`` (and, if given, its
    connection has ``connected_profile``: both are read one after the other)."""
    body: dict[str, Any] = (await csms.api.get(f"/stations/{station_id}/security-profile")).json()
    upgrade = body["upgrade"]
    if upgrade is None or upgrade["state"] != wanted:
        return None
    if connected_profile is not None and body["connected_profile"] != connected_profile:
        return None
    return body


async def refused_status(connecting: AbstractAsyncContextManager[Any]) -> int:
    """The HTTP status a station's connection attempt is refused with."""
    with pytest.raises(InvalidStatus) as refusal:
        async with connecting:
            pass
    return refusal.value.response.status_code


def calls(state: StationState) -> list[str]:
    return [action for action, _ in state.received]


@pytest.mark.parametrize(
    ("version", "case"), [("2.0.1", "tc_a_19"), ("2.1", "tc_a_19"), ("1.6", "tc_083")]
)
async def test_tc_a_19_tc_083_upgrade_1_to_2_to_3(csms: Csms, version: str, case: str) -> None:
    station_id = f"CP-UP-{version}".replace(".", "")
    await csms.identities.save(station_id, password=PASSWORD)
    state = StationState(station_id, ORGANIZATION)
    # Profile 1: ws:// and a password.
    async with secure_station(csms.ws_url, state, version, password=PASSWORD) as station:
        await station.call(boot_call(version))
        started = await upgrade(csms, station_id, 2)
        assert (started["from_profile"], started["target_profile"]) == (1, 2)
        await eventually(lambda: _reset(state))
        await eventually(lambda: upgrade_state(csms, station_id, "awaiting-reconnect"))
    if version == "1.6":
        assert calls(state) == ["ChangeConfiguration", "Reset"]
        assert state.received[0][1] == {"key": "SecurityProfile", "value": "2"}
        assert state.received[1][1] == {"type": "Hard"}
    else:
        assert calls(state) == ["GetVariables", "SetNetworkProfile", "SetVariables", "Reset"]
        network = state.received[1][1]
        assert network["configuration_slot"] == 2  # slot 1 is in use (the station said "1")
        assert network["connection_data"]["security_profile"] == 2
        assert network["connection_data"]["ocpp_csms_url"] == "wss://csms.example/ocpp/"
        priority = state.received[2][1]["set_variable_data"][0]
        assert priority["attribute_value"] == "2,1"
        assert state.received[3][1]["type"] == "OnIdle"
    # The reset station comes back with TLS: profile 2.
    state.reset.clear()
    state.received.clear()
    tls = state.tls(csms.server_trust(), with_certificate=False)
    async with secure_station(csms.wss_url, state, version, password=PASSWORD, tls=tls) as station:
        await station.call(boot_call(version))
        done = await eventually(lambda: upgrade_state(csms, station_id, "completed", 2))
        assert done["connected"]
        # Profile 1 is refused from now on (the recorded profile is 2): 403 at the upgrade.
        profile_1 = secure_station(csms.ws_url, state, version, password=PASSWORD)
        assert await refused_status(profile_1) == 403
        # Profile 3 needs a certificate of ours first.
        refused = await csms.api.post(
            f"/stations/{station_id}/security-profile/upgrades", json={"target_profile": 3}
        )
        assert refused.status_code == 409
        assert refused.json()["type"] == "urn:csms:problem:no-certificate"
        await station.sign("ChargingStationCertificate" if version != "1.6" else None)
        await eventually(lambda: _active(csms, station_id))
        await upgrade(csms, station_id, 3)
        await eventually(lambda: _reset(state))
        await eventually(lambda: upgrade_state(csms, station_id, "awaiting-reconnect"))
    tls = state.tls(csms.server_trust(), with_certificate=True)
    async with secure_station(csms.wss_url, state, version, tls=tls) as station:
        await station.call(boot_call(version))
        done = await eventually(lambda: upgrade_state(csms, station_id, "completed", 3))
    assert done["connected"]
    # Neither profile 1 nor 2 gets in any more: the station's recorded profile is 3.
    tls = state.tls(csms.server_trust(), with_certificate=False)
    for old in (
        secure_station(csms.ws_url, state, version, password=PASSWORD),
        secure_station(csms.wss_url, state, version, password=PASSWORD, tls=tls),
    ):
        assert await refused_status(old) == 403
    upgraded = [
        record["data"]
        for record in csms.published("csms.security-events", "security-profile.upgraded")
        if record["station_id"] == station_id
    ]
    assert [(u["from_profile"], u["to_profile"]) for u in upgraded] == [(1, 2), (2, 3)]


async def test_an_upgrade_is_refused_when_it_cannot_work(csms: Csms) -> None:
    state = StationState("CP-NOPASS", ORGANIZATION)
    unknown = await csms.api.post(
        "/stations/CP-NEVER/security-profile/upgrades", json={"target_profile": 2}
    )
    assert unknown.status_code == 404
    async with secure_station(csms.ws_url, state, "2.0.1") as station:
        await station.call(boot_call("2.0.1"))
        no_password = await csms.api.post(
            "/stations/CP-NOPASS/security-profile/upgrades", json={"target_profile": 2}
        )
        assert no_password.status_code == 409
        assert no_password.json()["type"] == "urn:csms:problem:no-password"
        bad = await csms.api.post(
            "/stations/CP-NOPASS/security-profile/upgrades", json={"target_profile": 4}
        )
        assert bad.status_code == 422
    offline = await csms.api.post(
        "/stations/CP-NOPASS/security-profile/upgrades", json={"target_profile": 2}
    )
    assert offline.status_code == 409
    assert state.received == []


async def test_a_refused_step_fails_the_upgrade(csms: Csms) -> None:
    await csms.identities.save("CP-REFUSE", password=PASSWORD)
    state = StationState("CP-REFUSE", ORGANIZATION)
    async with secure_station(csms.ws_url, state, "1.6", password=PASSWORD) as station:
        station.refuse_configuration = True
        await station.call(boot_call("1.6"))
        await upgrade(csms, "CP-REFUSE", 2)
        failed = await eventually(lambda: upgrade_state(csms, "CP-REFUSE", "failed"))
    assert "ChangeConfiguration Rejected" in failed["upgrade"]["error"]
    assert calls(state) == ["ChangeConfiguration"]  # no reset after a refusal


async def _reset(state: StationState) -> bool:
    return state.reset.is_set()


async def _active(csms: Csms, station_id: str) -> bool:
    body = (await csms.api.get(f"/stations/{station_id}/certificates")).json()
    return any(item["status"] == "active" for item in body["items"])
