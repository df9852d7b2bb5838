"""One ``/metrics`` for a service's processes (csms_api.metrics.merged): every sample of each
process's Prometheus text, labelled with its process, under one HELP and TYPE per metric."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from csms_api.metrics import merged


def exposition(handled: int, seconds: float) -> bytes:
    """A process's metrics as a process of the service counts them."""
    registry = CollectorRegistry()
    Counter("csms_events", "events handled", ["kind"], registry=registry).labels("boot").inc(
        handled
    )
    Histogram("csms_batch_seconds", "batch time", registry=registry).observe(seconds)
    Gauge("csms_lag_seconds", "lag", registry=registry).set(seconds)
    return generate_latest(registry)


def values(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_each_process_s_samples_are_labelled_with_it() -> None:
    text = merged({"api": exposition(0, 0.5), "consumer": exposition(7, 2.0)})
    found = values(text)
    assert found[("csms_events_total", frozenset({("kind", "boot"), ("process", "api")}))] == 0
    assert found[("csms_events_total", frozenset({("kind", "boot"), ("process", "consumer")}))] == 7
    assert found[("csms_lag_seconds", frozenset({("process", "consumer")}))] == 2.0
    assert found[("csms_batch_seconds_count", frozenset({("process", "api")}))] == 1
    assert found[("csms_batch_seconds_sum", frozenset({("process", "consumer")}))] == 2.0
    assert found[("csms_batch_seconds_bucket", frozenset({("le", "2.5"), ("process", "api")}))] == 1


def test_each_metric_is_described_once() -> None:
    lines = merged({"api": exposition(1, 1), "consumer": exposition(2, 2)}).decode().splitlines()
    types = [line for line in lines if line.startswith("# TYPE ")]
    assert len(types) == len(set(types))
    assert "# TYPE csms_events_total counter" in types
    assert "# TYPE csms_batch_seconds histogram" in types


def test_a_process_that_does_not_answer_is_left_out() -> None:
    found = values(merged({"api": exposition(3, 1), "consumer": None}))
    assert {dict(labels)["process"] for _, labels in found} == {"api"}
    assert found[("csms_events_total", frozenset({("kind", "boot"), ("process", "api")}))] == 3


def test_the_merged_text_is_what_each_process_said() -> None:
    alone = values(exposition(5, 0.25))
    found = values(merged({"consumer": exposition(5, 0.25)}))
    assert found == {
        (name, labels | {("process", "consumer")}): value for (name, labels), value in alone.items()
    }
