"""The billing service consuming the sessions service's events: running cost, CDR, late data."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
from sqlmodel import col, select

from csms_billing.consumer import TimelineConsumer
from csms_billing.inbox import ProcessedEvent
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SessionState
from csms_core.bus import Delivery
from csms_core.db import transaction
from csms_core.envelope import Event
from csms_core.events import CdrIssued, CdrIssuedData
from csms_core.topics import BY_NAME, CDRS, DEAD_LETTER, METER_VALUES, SESSIONS
from tests.billing_harness import (
    BillingHarness,
    ended,
    meter_values,
    register,
    started,
)
from tests.waiting import eventually

START = datetime(2024, 5, 6, 15, 0, tzinfo=UTC)  # 17:00 in Amsterdam (summer time)
TARIFF = {
    "tariff": {
        "id": "standard",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "FLAT", "price": 1.00, "vat": 21, "step_size": 1}]},
            {
                "price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21, "step_size": 1}],
                "restrictions": {"start_time": "07:00", "end_time": "18:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21, "step_size": 1}]},
        ],
    },
    "applies_to": {"station_ids": ["CP-7"]},
}


async def start(billing: BillingHarness, session_id: str = "s-1") -> None:
    data = started(
        session_id, "CP-7", START, transaction_id="tx-1", meter_start_wh=1000.0, token="TAG-9"
    )
    await billing.publish("session.started", "CP-7", data)


async def samples(
    billing: BillingHarness, *values: dict[str, Any], session_id: str = "s-1", late: bool = False
) -> None:
    data = meter_values(session_id, *values, transaction_id="tx-1", late=late)
    await billing.publish("meter.values", "CP-7", data)


async def end(
    billing: BillingHarness,
    at: datetime,
    stop_wh: float,
    *,
    final: bool = True,
    kind: str = "session.ended",
    started_at: datetime = START,
) -> None:
    data = ended(
        "s-1",
        started_at,
        at,
        transaction_id="tx-1",
        meter_start_wh=1000.0,
        meter_stop_wh=stop_wh,
        final=final,
    )
    await billing.publish(kind, "CP-7", data)


async def test_tc_i_02_final_cost_is_the_cdrs(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """The running cost, then the CDR of an ended session (2.0.1 I03 / TC_I_02: the final total
    cost a station is answered with is the CDR's)."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    # 17:00-18:00 local at 0.50/kWh: 4 kWh; 18:00-18:30 at 0.30/kWh: 2 kWh.
    await samples(billing, register(START + timedelta(hours=1), 5000))
    await billing.caught_up()
    running = (await api.get("/costs/s-1")).json()
    assert running["state"] == "active" and running["tariff_id"] == "standard"
    assert running["total_cost"]["excl_vat"] == 3.0  # 1.00 + 4 x 0.50 so far
    await samples(billing, register(START + timedelta(minutes=90), 7000, "Transaction.End"))
    await end(billing, START + timedelta(minutes=90), 7000)
    (cdr,) = await billing.wait_for_cdrs(1)
    # 1.00 + 4 x 0.50 + 2 x 0.30 = 3.60; x 1.21 = 4.356.
    assert cdr["total_cost"] == {"excl_vat": 3.6, "incl_vat": 4.36}
    assert cdr["session_id"] == "s-1" and cdr["total_energy"] == 6.0
    assert [p["start_date_time"] for p in cdr["charging_periods"]] == [
        "2024-05-06T15:00:00Z",
        "2024-05-06T16:00:00Z",
    ]
    final = (await api.get("/costs/s-1")).json()
    assert (final["state"], final["cdr_id"], final["total_cost"]) == (
        "ended",
        cdr["id"],
        cdr["total_cost"],
    )


async def test_billing_drivers_tariff_by_the_group_the_session_names(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """The sessions service names the token's group in session.started: a tariff for that
    token group prices the session; another driver's session gets the station's."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    fleet = {
        "tariff": {
            "id": "fleet",
            "currency": "EUR",
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [{"price_components": [{"type": "ENERGY", "price": 0.10, "step_size": 1}]}],
        },
        "applies_to": {"token_group_ids": ["FLEET-A"]},
    }
    assert (await api.put("/tariffs/fleet", json=fleet)).status_code == 201
    for session_id, group in (("s-fleet", "FLEET-A"), ("s-other", None)):
        data = started(session_id, "CP-7", START, meter_start_wh=1000.0, token="T", group_id=group)
        await billing.publish("session.started", "CP-7", data)
        end = START + timedelta(hours=2)
        closed = ended(session_id, START, end, meter_start_wh=1000.0, meter_stop_wh=7000.0)
        await billing.publish("session.ended", "CP-7", closed)
    by_session = {c["session_id"]: c for c in await billing.wait_for_cdrs(2)}
    # 6 kWh at 0.10 for the fleet; the station's tariff as in test_tc_i_02 for the other.
    assert by_session["s-fleet"]["total_cost"]["excl_vat"] == 0.6
    assert by_session["s-fleet"]["tariffs"][0]["id"] == "fleet"
    assert by_session["s-other"]["total_cost"]["excl_vat"] == 3.4


async def test_billing_late_meter_values_never_change_the_cdr(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """Meter values a station sends after its transaction ended are late data to the
    sessions service (docs/sessions.md rule 2): they never move the session's figures, so
    its CDR stands; they are kept."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await end(billing, START + timedelta(hours=2), 7000)
    (first,) = await billing.wait_for_cdrs(1)
    # Evenly 1000 -> 7000 Wh over 17:00-19:00: 3 kWh at 0.50, 3 at 0.30: 1.00 + 1.50 + 0.90.
    assert first["total_cost"]["excl_vat"] == 3.4
    # Queued samples after the end: 5 kWh were in by 18:00, the station says now.
    await samples(billing, register(START + timedelta(hours=1), 6000), late=True)
    await billing.caught_up()
    assert billing.cdrs() == [first]
    cost = (await api.get("/costs/s-1")).json()
    assert (cost["cdr_id"], cost["total_cost"]["excl_vat"]) == (first["id"], 3.4)
    async with billing.service.factory() as session:
        (kept,) = await sessions.samples_of(session, "s-1")
    assert (kept.value, kept.late) == (6000, True)


async def test_billing_samples_read_after_the_cdr_change_nothing_by_themselves(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A sample the sessions service counted (sent before the end) that billing reads only
    after the CDR (another topic, read much later): the CDR stands, the sample is kept."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await end(billing, START + timedelta(hours=2), 7000)
    (first,) = await billing.wait_for_cdrs(1)
    await samples(billing, register(START + timedelta(hours=1), 6000))
    await billing.caught_up()
    assert billing.cdrs() == [first]
    assert (await api.get("/costs/s-1")).json()["total_cost"]["excl_vat"] == 3.4


async def test_billing_prices_the_energy_the_session_counts(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """docs/sessions.md rule 4: with a start and a stop reading, the energy is stop minus
    start; a reading above the stop (a meter that disagrees) places none (without the rule,
    9000 then 7000 Wh would count as a reset: 8 kWh)."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await samples(billing, register(START + timedelta(hours=1), 9000))
    await end(billing, START + timedelta(hours=2), 7000)
    (cdr,) = await billing.wait_for_cdrs(1)
    assert (cdr["total_energy"], cdr["total_cost"]["excl_vat"]) == (6.0, 3.4)
    assert "Wh" not in cdr.get("remark", "")


async def test_billing_energy_other_than_the_sessions_is_flagged(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A session with no stop reading (superseded, resolved) whose energy the sessions
    service counted from a sample billing never read: the CDR says so, with both figures."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await samples(billing, register(START + timedelta(hours=1), 4000))
    data = ended(
        "s-1",
        START,
        START + timedelta(hours=2),
        transaction_id="tx-1",
        meter_start_wh=1000.0,
        meter_stop_wh=None,
        energy_wh=5000.0,
        stop_reason="superseded",
    )
    await billing.publish("session.ended", "CP-7", data)
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["total_energy"] == 3.0
    assert "priced 3000 Wh, the session recorded 5000 Wh" in cdr["remark"]


async def test_billing_cdr_waits_for_final_figures(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A 2.x offline replay out of order: the end before the start (``final: false``, the
    start the earliest time seen). No CDR until ``session.finalized`` gives the start."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    earliest = START + timedelta(minutes=30)
    await end(billing, START + timedelta(hours=2), 7000, final=False, started_at=earliest)
    await billing.caught_up()
    assert billing.cdrs() == []
    await end(billing, START + timedelta(hours=2), 7000, kind="session.finalized")
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["start_date_time"] == "2024-05-06T15:00:00Z"
    assert cdr["total_cost"]["excl_vat"] == 3.4  # the whole session, from its real start
    # The end told billing enough to price it: where, and the tariff of the station.
    assert cdr["cdr_location"]["evse_id"] == "CP-7*1"


async def test_billing_new_final_figures_credit_and_correct(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """Should the sessions service's final figures of a session change (a session.finalized
    after its CDR), the CDR is credited and a corrected one issued; the samples read after
    the first CDR count in the correction."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await end(billing, START + timedelta(hours=2), 7000)
    (first,) = await billing.wait_for_cdrs(1)
    await samples(billing, register(START + timedelta(hours=1), 6000))  # after the CDR
    await end(billing, START + timedelta(hours=2), 9000, kind="session.finalized")
    credit, corrected = (await billing.wait_for_cdrs(3))[1:]
    assert credit["credit"] is True and credit["credit_reference_id"] == first["id"]
    assert credit["total_cost"]["excl_vat"] == -3.4
    # 17:00-18:00 1000 -> 6000 Wh: 5 kWh at 0.50; 18:00-19:00 -> 9000: 3 kWh at 0.30.
    assert corrected["total_cost"]["excl_vat"] == 4.4 and "credit" not in corrected
    cost = (await api.get("/costs/s-1")).json()
    assert (cost["cdr_id"], cost["total_cost"]["excl_vat"]) == (corrected["id"], 4.4)
    # The same figures once more: nothing new.
    await end(billing, START + timedelta(hours=2), 9000, kind="session.finalized")
    await billing.caught_up()
    assert len(billing.cdrs()) == 3


async def test_billing_replayed_events_change_nothing(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await start(billing)  # the sessions service published it again (a new envelope)
    await end(billing, START + timedelta(hours=1), 5000)
    await end(billing, START + timedelta(hours=2), 9000)  # a second end never moves the first
    (cdr,) = await billing.wait_for_cdrs(1)
    await billing.caught_up()
    assert len(billing.cdrs()) == 1
    assert cdr["end_date_time"] == "2024-05-06T16:00:00Z" and cdr["total_energy"] == 4.0


async def test_billing_unreadable_event_is_dead_lettered(billing: BillingHarness) -> None:
    data = started("s-x", "CP-7", START)
    del data["started_at"]
    bad = await billing.publish_as_written("session.started", "CP-7", data)

    async def dead() -> list[Delivery] | None:
        return billing.bus.records(DEAD_LETTER) or None

    (letter,) = await eventually(dead, timeout_s=5)
    assert letter.envelope.data["event"]["id"] == bad.id
    assert letter.envelope.data["group"] == "csms-billing"
    assert "data.started_at: Field required" in letter.envelope.data["error"]  # the reason


def _delivery(event: Event[Any], offset: int) -> Delivery:
    topic = METER_VALUES if event.type == "meter.values" else SESSIONS
    return Delivery(topic, 0, offset, event.station_id, event.to_bytes())


def _event(event_type: str, data: dict[str, Any], event_id: str | None = None) -> Event[Any]:
    topic = BY_NAME[METER_VALUES if event_type == "meter.values" else SESSIONS]
    record = {
        "id": event_id or uuid4().hex,
        "type": event_type,
        "source": "csms/sessions",
        "station_id": "CP-7",
        "ocpp_version": "2.0.1",
        "data": data,
    }
    event: Event[Any] = topic.parse_object(record)
    return event


async def _one_transaction(billing: BillingHarness, deliveries: list[Delivery]) -> None:
    """The records as the batched consumer applies a partition's share of a poll."""
    service = billing.service
    consumer = TimelineConsumer(
        service.settings, billing.bus, service.engine, service.issuer, service.commands
    )
    async with transaction(service.factory) as session:
        batch = await consumer.begin(session, deliveries)
        for delivery in deliveries:
            assert await consumer.apply(batch, delivery) is False  # billing answers no station
        await consumer.finish(batch)
    await consumer.deliver(batch)


async def test_billing_a_batch_applies_a_session_as_one_by_one(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A whole session in one transaction, with a record twice in the batch: one session,
    ended once, its CDR as one by one (test_tc_i_02's figures)."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    opened = _event("session.started", started("s-b", "CP-7", START, meter_start_wh=1000.0))
    sample = meter_values("s-b", register(START + timedelta(hours=1), 4000))
    end = START + timedelta(hours=2)
    closed = ended("s-b", START, end, meter_start_wh=1000.0, meter_stop_wh=7000.0)
    records = [opened, _event("meter.values", sample), _event("session.ended", closed)]
    deliveries = [_delivery(event, offset) for offset, event in enumerate([*records, records[2]])]
    await _one_transaction(billing, deliveries)
    async with billing.service.factory() as session:
        billed = await session.get(BilledSession, "s-b")
        stored = await session.exec(
            select(ProcessedEvent).where(col(ProcessedEvent.event_id).in_([e.id for e in records]))
        )
        assert len(stored.all()) == 3
    assert billed is not None and (billed.state, billed.final) == (SessionState.ENDED, True)
    (cdr,) = await billing.wait_for_cdrs(1)
    assert (cdr["session_id"], cdr["total_cost"]["excl_vat"]) == ("s-b", 3.4)


async def test_billing_a_replayed_record_that_owed_its_cdr_events_sends_them(
    billing: BillingHarness,
) -> None:
    """A record whose effects committed but whose CDR events were not published (the
    process died in between): read again, it publishes them, changes nothing else, and is
    completed."""
    cdr_event = CdrIssued(
        id="cdr.c-gone",
        source="csms/billing",
        station_id="CP-7",
        data=CdrIssuedData(
            cdr_id="c-gone",
            session_id="s-gone",
            credit=False,
            credit_reference_id=None,
            cdr={"id": "c-gone"},
        ),
    )
    owed = _event("session.ended", ended("s-gone", START, START + timedelta(hours=1)))
    async with transaction(billing.service.factory) as session:
        outbox = [{"topic": CDRS, "event": cdr_event.model_dump(mode="json")}]
        session.add(ProcessedEvent(event_id=owed.id, outbox=outbox, completed=False))
    await _one_transaction(billing, [_delivery(owed, 0)])
    assert [d.envelope.id for d in billing.bus.records(CDRS)] == [cdr_event.id]
    async with billing.service.factory() as session:
        record = await session.get(ProcessedEvent, owed.id)
        assert record is not None and record.completed
        assert await session.get(BilledSession, "s-gone") is None  # not applied again
