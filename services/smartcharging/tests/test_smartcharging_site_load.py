"""A site's non-EV load from ``csms.site-load``: subtracted like the REST one; bad events
go to ``csms.dead-letter`` with the reason and change nothing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms_core.envelope import Envelope
from csms_core.topics import DEAD_LETTER, SITE_LOAD
from tests.kits.smartcharging import Harness, eventually


async def publish_load(harness: Harness, **data: Any) -> Envelope:
    event = Envelope(
        type="site.load.measured", source="test/site-meter", station_id="meter-1", data=data
    )
    # As an integrator writes it: any data, good or bad, read by the topic's model only then.
    await harness.bus.append(SITE_LOAD, event.station_id, event.to_bytes())
    return event


async def site_load(api: httpx.AsyncClient) -> list[float]:
    body = (await api.get("/sites/depot/allocation")).json()
    values: list[float] = body["site"]["non_ev_a"]
    return values


async def make_site(harness: Harness, api: httpx.AsyncClient) -> None:
    assert (await api.put("/sites/depot", json={"limit_a": 100})).status_code == 201
    body = {"evses": [{"evse_id": 1, "max_a": 32}]}
    assert (await api.put("/sites/depot/stations/A", json=body)).status_code == 201
    await harness.service.allocator.drain()


async def test_site_load_from_kafka_is_subtracted(harness: Harness, api: httpx.AsyncClient) -> None:
    await make_site(harness, api)
    await publish_load(harness, site_id="depot", load_a=[80, 70, 60])

    async def loaded() -> bool:
        return await site_load(api) == [80.0, 70.0, 60.0]

    await eventually(loaded)
    await harness.connect("A")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    body = (await api.get("/sites/depot/allocation")).json()
    assert body["sessions"][0]["limit_a"] == 20.0  # 100 A less the busiest phase's 80 A

    now = datetime.now(UTC)
    await publish_load(harness, site_id="depot", load_kw=13.8, measured_at=now.isoformat())
    late = (now - timedelta(seconds=30)).isoformat()  # older than the one kept: ignored
    await publish_load(harness, site_id="depot", load_a=1, measured_at=late)

    async def in_kw() -> bool:
        return await site_load(api) == [20.0, 20.0, 20.0]  # 13.8 kW / (230 V x 3)

    await eventually(in_kw)
    await harness.settle()
    assert harness.bus.records(DEAD_LETTER) == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"load_a": 5}, "needs a site_id"),
        ({"site_id": "nowhere", "load_a": 5}, "no site nowhere"),
        ({"site_id": "depot", "load_a": -5}, "a load is not negative"),
        ({"site_id": "depot", "load_a": "lots"}, "load_a"),
        ({"site_id": "depot", "load_a": [1, 2]}, "one value per phase"),
        ({"site_id": "depot", "load_a": 5, "load_kw": 3}, "exactly one of load_a and load_kw"),
        ({"site_id": "depot", "load_kw": 3, "measured_at": "yesterday"}, "measured_at"),
    ],
)
async def test_a_bad_site_load_event_is_dead_lettered_with_its_reason(
    harness: Harness, api: httpx.AsyncClient, data: dict[str, Any], reason: str
) -> None:
    await make_site(harness, api)
    event = await publish_load(harness, **data)

    async def dead() -> list[Envelope]:
        return [d.envelope for d in harness.bus.records(DEAD_LETTER)]

    letters = await eventually(dead)
    assert letters[0].data["event"]["id"] == event.id
    assert letters[0].data["topic"] == SITE_LOAD
    assert reason in letters[0].data["error"]
    assert await site_load(api) == [0.0, 0.0, 0.0]
