"""StatusNotification, Heartbeat and connection events: what a station's state looks like."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy
from sqlmodel import select

from csms_core.bus.memory import InMemoryBus
from csms_core.events import OcppCall
from csms_core.router.memory import InMemoryRouter
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND
from csms_ocpp import OcppVersion
from csms_sessions.batch import BatchReads
from csms_sessions.stations.bulk import ReportedStatus
from csms_sessions.stations.models import ConnectorState, ConnectorStatus
from csms_sessions.transactions.models import ChargingSession, SessionState
from tests.cluster import Infra
from tests.kits.sessions import Harness, running_sessions, settings_for_tests


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


# -- a batch of status reports and heartbeats (csms_sessions.stations.bulk) -------------------


def _status_v201(evse_id: int, state: str, second: int) -> dict[str, object]:
    return {
        "timestamp": f"2025-01-01T10:00:{second:02d}Z",
        "connectorStatus": state,
        "evseId": evse_id,
        "connectorId": 1,
    }


def _as_sent(at: datetime) -> datetime:
    """A time as the record carries it (OCPP time: milliseconds)."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def _batch(sessions: Harness) -> list[OcppCall]:
    """Reports of a stored station (CP-1) and of one never seen (CP-2), published before the
    consumer looks, so they are applied together."""
    reports = [
        ("CP-1", "StatusNotification", _status_v201(1, "Occupied", 1)),
        ("CP-1", "StatusNotification", _status_v201(2, "Reserved", 1)),
        ("CP-2", "StatusNotification", _status_v201(1, "Faulted", 1)),
        ("CP-1", "StatusNotification", _status_v201(1, "Available", 3)),
        ("CP-1", "Heartbeat", {}),
        ("CP-1", "StatusNotification", _status_v201(1, "Faulted", 2)),  # older than the one before
    ]
    return [
        await sessions.call(station, action, payload, version=OcppVersion.V201)
        for station, action, payload in reports
    ]


async def _stored(sessions: Harness) -> list[tuple[str, int, str, datetime]]:
    async with sessions.service.factory() as session:
        rows = (await session.exec(select(ConnectorStatus))).all()
    return sorted((r.station_id, r.evse_id, r.ocpp_status, r.updated_at) for r in rows)


async def test_a_batch_of_reports_stores_each_connectors_newest_status_and_replays_to_nothing(
    sessions: Harness,
) -> None:
    known = await sessions.call("CP-1", "Heartbeat", {})  # CP-1 is stored before the batch
    await sessions.processed(known)
    sent = await _batch(sessions)
    for event in sent:
        await sessions.processed(event)

    expected = [
        ("CP-1", 1, "Available", datetime(2025, 1, 1, 10, 0, 3, tzinfo=UTC)),
        ("CP-1", 2, "Reserved", datetime(2025, 1, 1, 10, 0, 1, tzinfo=UTC)),
        ("CP-2", 1, "Faulted", datetime(2025, 1, 1, 10, 0, 1, tzinfo=UTC)),
    ]
    assert await _stored(sessions) == expected
    # Every report that changed something is published, in the order sent; the older one not.
    changes = [
        (e.station_id, e.data["evse_id"], e.data["status"])
        for e in sessions.published("connector.status_changed")
    ]
    assert changes == [
        ("CP-1", 1, "Occupied"),
        ("CP-1", 2, "Reserved"),
        ("CP-2", 1, "Faulted"),
        ("CP-1", 1, "Available"),
    ]
    stations = {s: await sessions.station(s) for s in ("CP-1", "CP-2")}
    for station_id, station in stations.items():
        assert station is not None
        newest = _as_sent(max(e.data.received_at for e in sent if e.station_id == station_id))
        assert (station.last_seen_at, station.ocpp_version) == (newest, "2.0.1")

    # The batch once more (a replay after a crash), then a marker of another station: once
    # that is applied, so is the replay (one lane on SQLite, in order). Nothing changed.
    for event in sent:
        await sessions.publish(OCPP_INBOUND, event)
    marker = await sessions.call("CP-3", "Heartbeat", {})
    await sessions.processed(marker)
    assert await _stored(sessions) == expected
    assert len(sessions.published("connector.status_changed")) == len(changes)
    for station_id, station in stations.items():
        again = await sessions.station(station_id)
        assert again is not None and station is not None
        assert again.last_seen_at == station.last_seen_at


async def test_a_message_received_before_the_last_seen_time_does_not_move_it_back(
    sessions: Harness,
) -> None:
    first = await sessions.call("CP-1", "Heartbeat", {}, version=OcppVersion.V201)
    await sessions.processed(first)
    earlier = first.data.received_at - timedelta(minutes=5)
    late = first.model_copy(
        update={"id": uuid4().hex, "data": first.data.model_copy(update={"received_at": earlier})}
    )
    await sessions.publish(OCPP_INBOUND, late)
    await sessions.processed(late)

    station = await sessions.station("CP-1")
    assert station is not None
    assert station.last_seen_at == _as_sent(first.data.received_at)


@pytest.mark.integration
async def test_a_batch_writes_statuses_and_last_seen_in_bulk_on_postgresql(
    tmp_path: Path, infra: Infra
) -> None:
    """On PostgreSQL a batch's connector statuses go in one INSERT ... SELECT unnest(...)
    and its stations' last-seen times in one UPDATE ... FROM unnest(...): the newest of
    each wins, and a replayed older message changes neither."""
    settings = settings_for_tests(
        tmp_path, database_url=infra.database_url, unknown_station_policy="accept"
    )
    station_id = f"CP-{uuid4().hex[:8]}"
    t1, t2 = datetime(2025, 1, 1, 10, tzinfo=UTC), datetime(2025, 1, 1, 11, tzinfo=UTC)
    async with running_sessions(settings, InMemoryBus(), InMemoryRouter()) as sessions:
        await sessions.processed(await sessions.call(station_id, "Heartbeat", {}))
        reports = [(1, "Occupied", t1), (1, "Available", t2), (2, "Faulted", t1)]
        events = [
            await sessions.call(
                station_id,
                "StatusNotification",
                {
                    "timestamp": at.isoformat(),
                    "connectorStatus": status,
                    "evseId": evse_id,
                    "connectorId": 1,
                },
                version=OcppVersion.V201,
            )
            for evse_id, status, at in reports
        ]
        for event in events:
            await sessions.processed(event)
        seen = await sessions.station(station_id)
        assert seen is not None and seen.last_seen_at is not None
        older = events[0].data.received_at - timedelta(hours=1)
        replayed = events[0].model_copy(
            update={
                "id": uuid4().hex,
                "data": events[0].data.model_copy(update={"received_at": older}),
            }
        )
        await sessions.publish(OCPP_INBOUND, replayed)
        await sessions.processed(replayed)

        async with sessions.service.factory() as session:
            stored = {
                (row.evse_id, row.status, row.updated_at)
                for row in await session.exec(
                    select(ConnectorStatus).where(ConnectorStatus.station_id == station_id)
                )
            }
        after = await sessions.station(station_id)

    assert stored == {
        (1, ConnectorState.AVAILABLE, t2),
        (2, ConnectorState.FAULTED, t1),
    }
    assert after is not None and after.last_seen_at == seen.last_seen_at


@pytest.mark.integration
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_batch_reads_its_inbox_stations_sessions_and_statuses_in_one_statement(
    tmp_path: Path, infra: Infra, database: str
) -> None:
    """``BatchReads``: one SELECT finds which events the inbox has, the stored stations
    with their OCPP version, which reporting stations have an active session and their
    connectors' statuses (typed as stored), and nothing for keys that match no row."""
    overrides = {"database_url": infra.database_url} if database == "postgresql" else {}
    settings = settings_for_tests(tmp_path, unknown_station_policy="accept", **overrides)
    charging, idle, unknown = (f"CP-{uuid4().hex[:8]}" for _ in range(3))
    at = datetime(2025, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)
    async with running_sessions(settings, InMemoryBus(), InMemoryRouter()) as sessions:
        heartbeat = await sessions.call(idle, "Heartbeat", {}, version=OcppVersion.V201)
        await sessions.processed(heartbeat)
        report = await sessions.call(
            charging,
            "StatusNotification",
            {
                "timestamp": at.isoformat(),
                "connectorStatus": "Occupied",
                "evseId": 2,
                "connectorId": 1,
            },
            version=OcppVersion.V201,
        )
        await sessions.processed(report)
        async with sessions.service.factory() as session, session.begin():
            session.add(
                ChargingSession(
                    station_id=charging,
                    evse_id=2,
                    transaction_id="t-1",
                    state=SessionState.ACTIVE,
                    started_at=at,
                )
            )
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = sessions.service.engine.sync_engine
        sqlalchemy.event.listen(engine, "before_cursor_execute", count)
        try:
            async with sessions.service.factory() as session, session.begin():
                reads = await BatchReads.read(
                    session,
                    [heartbeat.id, report.id, "never-seen"],
                    [idle, charging, unknown],
                    [charging, idle, unknown],
                )
        finally:
            sqlalchemy.event.remove(engine, "before_cursor_execute", count)

    assert len(statements) == 1
    assert sorted(reads.replayed) == sorted([heartbeat.id, report.id])
    assert reads.versions == {idle: "2.0.1", charging: "2.0.1"}
    assert reads.active == {charging}
    assert reads.statuses == [
        ReportedStatus(charging, 2, 1, ConnectorState.OCCUPIED, "Occupied", at, None)
    ]
    assert isinstance(reads.statuses[0].status, ConnectorState)
