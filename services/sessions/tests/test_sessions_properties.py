"""Property tests of the one rule (docs/sessions.md) over random interleavings of start,
update, stop and meter messages with duplicates, contradictions and reordering, per version:

- once a session has ended, its end and stop reading never change;
- once it is final (ended, start known), its start, end and energy never change, and its
  energy agrees with its stop reading wherever it has a start and a stop reading;
- no EVSE ever has two active sessions.

OCTT: 1.6 Core transactions (TC_003, TC_004_1, TC_039 offline), 2.0.1 E block (TC_E_03,
TC_E_14, TC_E_53). Each example is a station of its own on one running service, which
runs on an event loop of its own (hypothesis drives synchronous tests; the service is
the real one on the embedded bus and SQLite).
"""

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Event
from csms_core.events import OcppCall
from csms_core.router.memory import InMemoryRouter
from csms_ocpp import OcppVersion, schemas
from csms_sessions.context import PARTY
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.transactions.models import ChargingSession
from tests.kits.sessions import Harness, running_sessions, settings_for_tests
from tests.kits.transactions import charging_sessions

T = TypeVar("T")
BASE = datetime(2025, 1, 1, 10, tzinfo=UTC)
PROPERTY_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Live:
    """A sessions service running on a loop in another thread."""

    loop: asyncio.AbstractEventLoop
    harness: Harness | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sessions under test")
    thread.start()
    live = Live(loop)
    entered = asyncio.Event()
    leave = asyncio.Event()
    path = tmp_path_factory.mktemp("properties")

    async def serve() -> None:
        settings_ = settings_for_tests(Path(path))
        async with running_sessions(settings_, InMemoryBus(), InMemoryRouter()) as harness:
            live.harness = harness
            entered.set()
            await leave.wait()

    serving = asyncio.run_coroutine_threadsafe(serve(), loop)
    live.run(entered.wait())
    try:
        yield live
    finally:
        loop.call_soon_threadsafe(leave.set)
        serving.result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def ocpp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Message:
    """One station message of transaction ``tx`` (its payload made at send time for 1.6,
    whose transactionId the CSMS allocates)."""

    tx: int
    action: str
    fields: tuple[tuple[str, Any], ...]


def _transaction_v2(tx: int, updates: int, extra: str | None) -> list[Message]:
    """Started (Begin register), Updated..., Ended (End register), maybe late ones."""
    start = BASE + timedelta(hours=tx // 2, minutes=(tx % 2) * 5)
    steps = [("Started", start, 1000.0 * tx)]
    steps += [
        ("Updated", start + timedelta(minutes=10 * (i + 1)), 1000.0 * tx + 100 * (i + 1))
        for i in range(updates)
    ]
    steps.append(("Ended", start + timedelta(minutes=50), 1000.0 * tx + 600))
    if extra == "updated_after":
        steps.append(("Updated", start + timedelta(minutes=55), 1000.0 * tx + 900))
    if extra == "ended_again":
        steps.append(("Ended", start + timedelta(minutes=51), 1000.0 * tx + 700))
    messages = []
    for seq_no, (event_type, at, wh) in enumerate(steps):
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
            event_type, "Sample.Periodic"
        )
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": ocpp(at),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": f"tx-{tx}"},
            "meterValue": [
                {
                    "timestamp": ocpp(at),
                    "sampledValue": [{"value": wh, "context": context}],
                }
            ],
        }
        if event_type == "Started":
            payload["evse"] = {"id": 1, "connectorId": 1}
        messages.append(Message(tx, "TransactionEvent", tuple(payload.items())))
    return messages


def _transaction_v16(tx: int, updates: int, extra: str | None) -> list[Message]:
    start = BASE + timedelta(hours=tx // 2, minutes=(tx % 2) * 5)
    begin = {
        "connectorId": 1,
        "idTag": f"TAG-{tx}",
        "meterStart": 1000 * tx,
        "timestamp": ocpp(start),
    }
    messages = [Message(tx, "StartTransaction", tuple(begin.items()))]
    for i in range(updates):
        at = start + timedelta(minutes=10 * (i + 1))
        messages.append(_meter_v16(tx, at, 1000 * tx + 100 * (i + 1)))
    stop = {"meterStop": 1000 * tx + 600, "timestamp": ocpp(start + timedelta(minutes=50))}
    messages.append(Message(tx, "StopTransaction", tuple(stop.items())))
    if extra == "updated_after":
        messages.append(_meter_v16(tx, start + timedelta(minutes=55), 1000 * tx + 900))
    if extra == "ended_again":
        again = {"meterStop": 1000 * tx + 700, "timestamp": ocpp(start + timedelta(minutes=51))}
        messages.append(Message(tx, "StopTransaction", tuple(again.items())))
    return messages


def _meter_v16(tx: int, at: datetime, wh: int) -> Message:
    meter = [{"timestamp": ocpp(at), "sampledValue": [{"value": str(wh)}]}]
    return Message(tx, "MeterValues", (("connectorId", 1), ("meterValue", meter)))


@st.composite
def interleavings(draw: st.DrawFn, version: OcppVersion) -> list[Message]:
    """Up to three transactions on one EVSE, shuffled, with duplicates; 1.6 keeps each
    StartTransaction before its transaction's other messages (the id comes from its answer)."""
    make = _transaction_v2 if version.is_2x else _transaction_v16
    messages: list[Message] = []
    for tx in range(draw(st.integers(1, 3))):
        updates = draw(st.integers(0, 2))
        extra = draw(st.sampled_from([None, "updated_after", "ended_again"]))
        messages += make(tx, updates, extra)
    order = draw(st.permutations(messages))
    duplicates = draw(st.lists(st.sampled_from(messages), max_size=3))
    shuffled = list(order)
    for duplicate in duplicates:
        shuffled.insert(draw(st.integers(0, len(shuffled))), duplicate)
    if version.is_2x:
        return shuffled
    starts = {m.tx: m for m in messages if m.action == "StartTransaction"}
    result: list[Message] = []
    for message in shuffled:
        if starts[message.tx] not in result and message.action != "StartTransaction":
            result.append(starts[message.tx])  # (its own place later: a re-sent start)
        result.append(message)
    return result


@dataclass
class Invariants:
    """What was seen of each session so far, to check nothing moves that may not."""

    ended: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    final: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def check(self, sessions_now: list[ChargingSession]) -> None:
        active = [c.evse_id for c in sessions_now if c.state == "active" and c.evse_id]
        assert len(active) == len(set(active)), f"two active sessions on one EVSE: {active}"
        for charging in sessions_now:
            if charging.state == "ended":
                end = (charging.ended_at, charging.meter_stop_wh, charging.stop_reason)
                assert self.ended.setdefault(charging.session_id, end) == end, charging
            if charging.final:
                figures = (charging.started_at, charging.ended_at, charging.energy_wh)
                assert self.final.setdefault(charging.session_id, figures) == figures, charging
                start, stop = charging.meter_start_wh, charging.meter_stop_wh
                if start is not None and stop is not None and stop >= start:
                    assert charging.energy_wh == stop - start, charging


async def _send(
    harness: Harness, action: str, payload: dict[str, Any], version: OcppVersion, station_id: str
) -> dict[str, Any] | None:
    """Send a station CALL and wait until its effects are committed (not for the 0.1 s
    completion flush that ``tests.kits.transactions.send`` waits for: only rows are read)."""
    assert schemas.validate(version, action, payload) is None
    event = await harness.call(station_id, action, payload, version=version)
    if event.data.owner == PARTY:
        reply = await harness.answer()
        assert reply.payload is not None, reply.error_description
        return reply.payload
    async with asyncio.timeout(10):
        while True:
            async with harness.service.factory() as session:
                if await session.get(ProcessedEvent, event.id) is not None:
                    return None
            await asyncio.sleep(0.002)


def _replay(live: Live, version: OcppVersion, messages: list[Message]) -> None:
    assert live.harness is not None
    harness, station_id = live.harness, f"P-{uuid4().hex[:10]}"
    transaction_ids: dict[int, int] = {}
    invariants = Invariants()
    for message in messages:
        payload = dict(message.fields)
        if message.action != "StartTransaction" and not version.is_2x:
            payload["transactionId"] = transaction_ids[message.tx]
        answer = live.run(_send(harness, message.action, payload, version, station_id))
        if message.action == "StartTransaction":
            assert answer is not None
            transaction_ids.setdefault(message.tx, answer["transactionId"])
        invariants.check(live.run(charging_sessions(harness, station_id)))


@PROPERTY_SETTINGS
@given(messages=interleavings(OcppVersion.V16))
def test_tc_039_tc_004_1_interleavings_never_rewrite_an_ended_session_v16(
    live: Live, messages: list[Message]
) -> None:
    _replay(live, OcppVersion.V16, messages)


@PROPERTY_SETTINGS
@given(messages=interleavings(OcppVersion.V201))
def test_tc_e_03_tc_e_14_interleavings_never_rewrite_an_ended_session_v201(
    live: Live, messages: list[Message]
) -> None:
    _replay(live, OcppVersion.V201, messages)


# -- batching: the batched consumer applies many events in one transaction --------------------

# What a session is, whatever its ids and the moments the CSMS noticed things.
_COMPARED = (
    "evse_id", "connector_id", "transaction_id", "state", "start_seen", "started_at",
    "ended_at", "stop_reason", "trigger_reason", "charging_state", "meter_start_wh",
    "meter_stop_wh", "energy_wh", "measured_at", "last_seq_no", "seen_seq_nos", "seq_gap",
    "start_seq_no", "offline", "final", "late_messages",
)  # fmt: skip


def _figures(sessions_now: list[ChargingSession]) -> list[dict[str, Any]]:
    return [
        {name: getattr(charging, name) for name in _COMPARED}
        | {"flags": sorted(flag["reason"] for flag in charging.flags)}
        for charging in sessions_now
    ]


# Names, and the moments the CSMS received or changed something (also in a flag's text).
_INCIDENTAL = frozenset({"session_id", "station_id", "detail", "received_at", "updated_at"})


def _published(harness: Harness, station_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The domain events about the station on csms.sessions and csms.meter-values, in order,
    once each (a replay may publish an event again: the same id, which consumers drop),
    without what is incidental to them."""
    events, seen = [], set()
    for topic in (topics.SESSIONS, topics.METER_VALUES):
        for delivery in harness.bus.records(topic):
            envelope = delivery.envelope
            if envelope.station_id == station_id and envelope.id not in seen:
                seen.add(envelope.id)
                data = {k: v for k, v in envelope.data.items() if k not in _INCIDENTAL}
                events.append((envelope.type, data))
    return events


async def _all_at_once(
    harness: Harness, station_id: str, messages: list[Message], version: OcppVersion
) -> list[OcppCall]:
    """Publish every message before the consumer looks (so one poll, one transaction), then
    wait until every one is applied; the events published."""
    sent = [
        await harness.call(station_id, m.action, dict(m.fields), version=version) for m in messages
    ]
    await _applied(harness, sent)
    return sent


async def _again(harness: Harness, sent: list[OcppCall], version: OcppVersion) -> None:
    """The same events once more, all at once (a replay after a crash), then a Heartbeat:
    once that is applied, so is everything before it (one lane, in order)."""
    for event in sent:
        await harness.publish(topics.OCPP_INBOUND, event)
    marker = await harness.call(sent[0].station_id, "Heartbeat", {}, version=version)
    await _applied(harness, [marker])


async def _applied(harness: Harness, sent: Sequence[Event[Any]]) -> None:
    """Wait until every event is applied and what it owed went out (its inbox row marked
    completed: the row alone is committed before the answer and the domain events leave)."""
    async with asyncio.timeout(20):
        for event in sent:
            while True:
                async with harness.service.factory() as session:
                    record = await session.get(ProcessedEvent, event.id)
                if record is not None and record.completed:
                    break
                await asyncio.sleep(0.005)


@PROPERTY_SETTINGS
@given(messages=interleavings(OcppVersion.V201))
def test_a_batch_of_transaction_events_ends_as_they_do_one_by_one_v201(
    live: Live, messages: list[Message]
) -> None:
    assert live.harness is not None
    harness, version = live.harness, OcppVersion.V201
    one_by_one, batched = f"S-{uuid4().hex[:10]}", f"B-{uuid4().hex[:10]}"
    for message in messages:
        live.run(_send(harness, message.action, dict(message.fields), version, one_by_one))
    sent = live.run(_all_at_once(harness, batched, messages, version))
    expected = _figures(live.run(charging_sessions(harness, one_by_one)))
    published = _published(harness, one_by_one)

    assert _figures(live.run(charging_sessions(harness, batched))) == expected
    assert _published(harness, batched) == published
    # The whole batch replayed (a crash before its offsets were committed) changes nothing.
    live.run(_again(harness, sent, version))
    assert _figures(live.run(charging_sessions(harness, batched))) == expected
    assert _published(harness, batched) == published
