"""One trace follows a station CALL gateway → bus → sessions → router → gateway."""

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan

from tests import stations
from tests.kits.tracing import memory_exporter
from tests.test_cli_embedded import embedded


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


async def test_boot_notification_is_one_trace_across_every_hop(tmp_path: Path) -> None:
    exporter = memory_exporter()
    async with (
        embedded(tmp_path) as (ocpp_url, _, _),
        stations.station(ocpp_url, "CP-TRACED", "2.0.1") as station,
    ):
        assert (await station.call(stations.boot_call("2.0.1"))).status == "Accepted"
    spans = exporter.get_finished_spans()
    received = _named(spans, "ocpp BootNotification")
    consumed = [
        span
        for span in spans
        if span.name == "consume ocpp.inbound"
        and span.attributes is not None
        and span.attributes.get("csms.station_id") == "CP-TRACED"
    ]
    answered = _named(spans, "answer BootNotification")
    trace_id = received.context.trace_id
    # Every service consuming ocpp.inbound (sessions decides; security reads it too)
    # continues the station's trace, once per consumer group.
    groups = [str((span.attributes or {})["messaging.consumer.group.name"]) for span in consumed]
    assert len(groups) == len(set(groups)), groups
    assert any("sessions" in group for group in groups), groups
    assert [span.context.trace_id for span in consumed] == [trace_id] * len(consumed)
    assert answered.context.trace_id == trace_id
    for span in consumed:
        assert span.parent is not None
        assert span.parent.span_id == received.context.span_id
