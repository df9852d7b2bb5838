"""Prometheus metrics of one gateway, in a registry of its own (served on ``/metrics``)."""

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]

_Metric = TypeVar("_Metric", Counter, Histogram)


class GatewayMetrics:
    """Connections, frames, CALLERRORs, publish latency and command outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[Any, ...], Any] = {}
        self.connected_stations = Gauge(
            "csms_gateway_connected_stations",
            "Stations connected to this gateway",
            ["ocpp_version"],
            registry=self.registry,
        )
        self.frames_in = Counter(
            "csms_gateway_frames_received",
            "OCPP-J frames received from stations",
            ["message_type", "action"],
            registry=self.registry,
        )
        self.frames_out = Counter(
            "csms_gateway_frames_sent",
            "OCPP-J frames sent to stations",
            ["message_type", "action"],
            registry=self.registry,
        )
        self.call_errors = Counter(
            "csms_gateway_callerrors_sent",
            "CALLERRORs sent to stations, by code",
            ["code"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "csms_gateway_publish_seconds",
            "Time until an event is durable on the bus",
            ["topic"],
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

    # Label lookups cost a lock and a dict per call: each frame takes the child from here.
    def frame_received(self, message_type: str, action: str) -> Counter:
        return self._child(self.frames_in, message_type, action)

    def frame_sent(self, message_type: str, action: str) -> Counter:
        return self._child(self.frames_out, message_type, action)

    def call_error_sent(self, code: str) -> Counter:
        return self._child(self.call_errors, code)

    def publish_timer(self, topic: str) -> Histogram:
        return self._child(self.publish_seconds, topic)

    def _child(self, metric: _Metric, *labels: str) -> _Metric:
        key = (id(metric), *labels)
        child: _Metric | None = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
