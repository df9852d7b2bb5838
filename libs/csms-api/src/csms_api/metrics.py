"""A service's ``/metrics`` when it runs in more than one process (``csms sessions`` with
``CSMS_SESSIONS_PROCESSES=2``): each process keeps its own Prometheus registry, and the one
that serves REST answers for all of them, every sample labelled with its ``process``.

The consumer's metrics (batches, lag, events handled) are counted in the consumer process:
without this, a scrape of the REST process showed them all empty.
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

# The other processes' metrics, as their Prometheus text (None: that process does not
# answer now, e.g. it is being restarted).
OtherProcesses = Callable[[], Awaitable[Mapping[str, bytes | None]]]


def merged(expositions: Mapping[str, bytes | None]) -> bytes:
    """The Prometheus text of several processes as one, each sample labelled
    ``process=<name>``: one HELP and TYPE per metric, its samples from every process."""
    families: dict[str, Metric] = {}
    for process, text in expositions.items():
        if text is None:
            continue
        for family in text_string_to_metric_families(text.decode()):
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            into.samples += [
                sample._replace(labels={**sample.labels, "process": process})
                for sample in family.samples
            ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Parsed(list(families.values())))
    return generate_latest(registry)


class _Parsed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families
