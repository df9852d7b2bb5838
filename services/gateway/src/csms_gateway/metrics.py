"""Prometheus metrics of one gateway, in a registry of its own (served on ``/metrics``).

The ones counted for every frame (frames in and out, CALLERRORs, the publish time) are
plain Python numbers read when ``/metrics`` is scraped (``FrameCounters``): the event
loop is the only writer, so they need none of ``prometheus_client``'s locks, and a
frame's counting is an attribute increment instead of a lock, a dict and two calls.
"""

import bisect
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Count", "GatewayMetrics", "Timing"]


class Count:
    """One labelled counter's value (only the event loop writes it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Timing:
    """One labelled histogram of durations (seconds), Prometheus' default buckets."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(Histogram.DEFAULT_BUCKETS))
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # DEFAULT_BUCKETS ends with +Inf: every value has a bucket.
        self.counts[bisect.bisect_left(Histogram.DEFAULT_BUCKETS, seconds)] += 1
        self.sum += seconds


class _Family:
    """The children of one labelled metric, by their label values."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)


class FrameCounters(Collector):
    """Counters and histograms written on every frame, exposed at scrape time."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[_Family, dict[tuple[str, ...], Count]]] = {}
        self.timings: dict[str, tuple[_Family, dict[tuple[str, ...], Timing]]] = {}

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> dict[Any, Count]:
        children: dict[tuple[str, ...], Count] = {}
        self.counters[name] = (_Family(name, documentation, labels), children)
        return children

    def timing(self, name: str, documentation: str, labels: Sequence[str]) -> dict[Any, Timing]:
        children: dict[tuple[str, ...], Timing] = {}
        self.timings[name] = (_Family(name, documentation, labels), children)
        return children

    def collect(self) -> Iterator[Metric]:
        for family, counts in self.counters.values():
            counter = CounterMetricFamily(family.name, family.documentation, labels=family.labels)
            for labels, count in list(counts.items()):
                counter.add_metric(list(labels), count.value)
            yield counter
        for family, timings in self.timings.values():
            histogram = HistogramMetricFamily(
                family.name, family.documentation, labels=family.labels
            )
            for labels, timing in list(timings.items()):
                cumulative, buckets = 0, []
                for bound, in_bucket in zip(Histogram.DEFAULT_BUCKETS, timing.counts, strict=True):
                    cumulative += in_bucket
                    buckets.append((_bound(bound), float(cumulative)))
                histogram.add_metric(list(labels), buckets, timing.sum)
            yield histogram


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class GatewayMetrics:
    """Connections, frames, CALLERRORs, publish latency and command outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        frames = FrameCounters()
        self._frames_in = frames.counter(
            "csms_gateway_frames_received",
            "OCPP-J frames received from stations",
            ["message_type", "action"],
        )
        self._frames_out = frames.counter(
            "csms_gateway_frames_sent", "OCPP-J frames sent to stations", ["message_type", "action"]
        )
        self._call_errors = frames.counter(
            "csms_gateway_callerrors_sent", "CALLERRORs sent to stations, by code", ["code"]
        )
        self._publish_seconds = frames.timing(
            "csms_gateway_publish_seconds", "Time until an event is durable on the bus", ["topic"]
        )
        self.registry.register(frames)
        self.connected_stations = Gauge(
            "csms_gateway_connected_stations",
            "Stations connected to this gateway",
            ["ocpp_version"],
            registry=self.registry,
        )
        self.command_outcomes = Counter(
            "csms_gateway_command_outcomes",
            "Outcomes of CSMS-initiated calls",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.refusals_held_back = Counter(
            "csms_gateway_refusals_held_back",
            "Refusals of stations not published (repeats within the report period, or too "
            "many at once)",
            registry=self.registry,
        )
        self.flood_cutoffs = Counter(
            "csms_gateway_flood_cutoffs",
            "Connections closed for sending CALLs over the rate limit",
            registry=self.registry,
        )
        self.handshakes_refused = Counter(
            "csms_gateway_handshakes_refused",
            "WebSocket handshakes refused, by reason",
            ["reason"],
            registry=self.registry,
        )

    # Each frame takes its child from here: one dict lookup.
    def frame_received(self, message_type: str, action: str) -> Count:
        return _child(self._frames_in, (message_type, action), Count)

    def frame_sent(self, message_type: str, action: str) -> Count:
        return _child(self._frames_out, (message_type, action), Count)

    def call_error_sent(self, code: str) -> Count:
        return _child(self._call_errors, (code,), Count)

    def publish_timer(self, topic: str) -> Timing:
        return _child(self._publish_seconds, (topic,), Timing)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


_Child = TypeVar("_Child", Count, Timing)


def _child(
    children: dict[tuple[str, ...], _Child], labels: tuple[str, ...], kind: type[_Child]
) -> _Child:
    child = children.get(labels)
    if child is None:
        child = children[labels] = kind()
    return child
