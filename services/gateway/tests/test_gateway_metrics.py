"""The per-frame metrics (plain numbers read at scrape time) as Prometheus exposes them."""

from prometheus_client.parser import text_string_to_metric_families

from csms_gateway.metrics import GatewayMetrics


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_frame_counters_are_exposed_with_their_labels() -> None:
    metrics = GatewayMetrics()
    metrics.frame_received("Call", "Heartbeat").inc()
    metrics.frame_received("Call", "Heartbeat").inc()
    metrics.frame_received("Call", "StatusNotification").inc()
    metrics.frame_sent("CallResult", "").inc()
    metrics.call_error_sent("FormatViolation").inc(3)

    exposed = samples(metrics)

    received = "csms_gateway_frames_received_total"
    assert exposed[(received, (("action", "Heartbeat"), ("message_type", "Call")))] == 2.0
    assert exposed[(received, (("action", "StatusNotification"), ("message_type", "Call")))] == 1
    sent = "csms_gateway_frames_sent_total"
    assert exposed[(sent, (("action", ""), ("message_type", "CallResult")))] == 1.0
    assert exposed[("csms_gateway_callerrors_sent_total", (("code", "FormatViolation"),))] == 3.0


def test_publish_seconds_is_a_cumulative_histogram() -> None:
    metrics = GatewayMetrics()
    timer = metrics.publish_timer("ocpp.inbound")
    for seconds in (0.001, 0.005, 0.02, 20.0):  # 0.005 is in the bucket le=0.005
        timer.observe(seconds)

    exposed = samples(metrics)

    def bucket(bound: str) -> float:
        labels = (("le", bound), ("topic", "ocpp.inbound"))
        return exposed[("csms_gateway_publish_seconds_bucket", labels)]

    assert (bucket("0.005"), bucket("0.01"), bucket("0.025"), bucket("10.0")) == (2, 2, 3, 3)
    assert bucket("+Inf") == 4
    assert exposed[("csms_gateway_publish_seconds_count", (("topic", "ocpp.inbound"),))] == 4
    total = exposed[("csms_gateway_publish_seconds_sum", (("topic", "ocpp.inbound"),))]
    assert abs(total - 20.026) < 1e-9
