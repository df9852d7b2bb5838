"""StatusNotification, Heartbeat and connection events: what a station's state looks like."""

from datetime import UTC, datetime

from csms_core.topics import OCPP_CONNECTIONS
from csms_ocpp import OcppVersion
from csms_sessions.stations.models import ConnectorState, ConnectorStatus
from tests.kits.sessions import Harness


async def connector(sessions: Harness, evse_id: int, connector_id: int) -> ConnectorStatus | None:
    async with sessions.service.factory() as session:
        return await session.get(ConnectorStatus, ("CP-1", evse_id, connector_id))


async def test_status_notification_v16_stored_as_evse_and_published(sessions: Harness) -> None:
    event = await sessions.call(
        "CP-1",
        "StatusNotification",
        {
            "connectorId": 2,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": "2025-01-01T10:00:00Z",
        },
    )
    await sessions.processed(event)

    stored = await connector(sessions, 2, 1)
    assert stored is not None
    assert (stored.status, stored.ocpp_status, stored.error_code) == (
        ConnectorState.OCCUPIED,
        "Charging",
        "NoError",
    )
    assert stored.updated_at == datetime(2025, 1, 1, 10, tzinfo=UTC)
    [changed] = sessions.published("connector.status_changed")
    assert changed.data == {
        "evse_id": 2,
        "connector_id": 1,
        "status": "Occupied",
        "ocpp_status": "Charging",
        "error_code": "NoError",
        "timestamp": "2025-01-01T10:00:00+00:00",
    }


async def test_status_notification_v16_connector_0_is_the_station(sessions: Harness) -> None:
    event = await sessions.call(
        "CP-1",
        "StatusNotification",
        {"connectorId": 0, "errorCode": "NoError", "status": "Faulted"},
    )
    await sessions.processed(event)

    stored = await connector(sessions, 0, 0)
    assert stored is not None
    assert stored.status is ConnectorState.FAULTED
    # 1.6 may omit the timestamp: the time of receipt counts.
    assert stored.updated_at.isoformat().startswith(event.data.received_at.isoformat()[:19])


async def test_status_notification_v201_stored_and_published(sessions: Harness) -> None:
    event = await sessions.call(
        "CP-1",
        "StatusNotification",
        {
            "timestamp": "2025-01-01T10:00:00.000Z",
            "connectorStatus": "Reserved",
            "evseId": 1,
            "connectorId": 2,
        },
        version=OcppVersion.V201,
    )
    await sessions.processed(event)

    stored = await connector(sessions, 1, 2)
    assert stored is not None
    assert (stored.status, stored.ocpp_status, stored.error_code) == (
        ConnectorState.RESERVED,
        "Reserved",
        None,
    )
    [changed] = sessions.published("connector.status_changed")
    assert changed.ocpp_version == "2.0.1"
    assert changed.data["status"] == "Reserved"


async def test_status_notification_older_than_stored_is_ignored(sessions: Harness) -> None:
    def status(state: str, timestamp: str) -> dict[str, object]:
        return {"timestamp": timestamp, "connectorStatus": state, "evseId": 1, "connectorId": 1}

    newer = await sessions.call(
        "CP-1",
        "StatusNotification",
        status("Occupied", "2025-01-01T10:00:05Z"),
        version=OcppVersion.V201,
    )
    older = await sessions.call(
        "CP-1",
        "StatusNotification",
        status("Available", "2025-01-01T10:00:00Z"),
        version=OcppVersion.V201,
    )
    await sessions.processed(newer)
    await sessions.processed(older)

    stored = await connector(sessions, 1, 1)
    assert stored is not None
    assert stored.status is ConnectorState.OCCUPIED
    assert [e.data["status"] for e in sessions.published("connector.status_changed")] == [
        "Occupied"
    ]


async def test_heartbeat_updates_last_seen_and_is_not_answered(sessions: Harness) -> None:
    event = await sessions.call("CP-1", "Heartbeat", {})
    await sessions.processed(event)

    station = await sessions.station("CP-1")
    assert station is not None
    assert station.last_seen_at is not None
    assert event.data.owner == "gateway"
    assert sessions.published() == []


async def test_any_other_action_only_updates_last_seen(sessions: Harness) -> None:
    event = await sessions.call(
        "CP-1",
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {"timestamp": "2025-01-01T10:00:00Z", "sampledValue": [{"value": "10"}]}
            ],
        },
    )
    await sessions.processed(event)

    station = await sessions.station("CP-1")
    assert station is not None
    assert station.last_seen_at is not None
    assert sessions.published() == []


async def test_connection_opened_then_closed(sessions: Harness) -> None:
    opened = await sessions.connect("CP-1", "conn-1", OcppVersion.V201)
    await sessions.processed(opened)
    station = await sessions.station("CP-1")
    assert station is not None
    assert (station.online, station.gateway_id, station.connection_id) == (
        True,
        "gw-test",
        "conn-1",
    )
    assert station.ocpp_version == "2.0.1"

    closed = await sessions.disconnect("CP-1", "conn-1")
    await sessions.processed(closed)

    station = await sessions.station("CP-1")
    assert station is not None
    assert station.online is False
    assert station.disconnected_at is not None
    assert [e.type for e in sessions.published()] == ["station.connected", "station.disconnected"]
    assert sessions.published("station.disconnected")[0].data["close_code"] == 1000


async def test_close_of_superseded_connection_keeps_station_online(sessions: Harness) -> None:
    # The station reconnected (conn-2) before the gateway reported conn-1 closed.
    for event in (
        await sessions.connect("CP-1", "conn-1"),
        await sessions.connect("CP-1", "conn-2"),
        await sessions.disconnect("CP-1", "conn-1"),
    ):
        await sessions.processed(event)

    station = await sessions.station("CP-1")
    assert station is not None
    assert (station.online, station.connection_id) == (True, "conn-2")
    assert [e.type for e in sessions.published()] == ["station.connected", "station.connected"]
    assert len(sessions.bus.records(OCPP_CONNECTIONS)) == 3
