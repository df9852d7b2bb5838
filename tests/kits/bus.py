"""Bus kits for tests of consumer loops."""

from collections.abc import Sequence

from csms_core.bus import Delivery
from csms_core.bus.memory import InMemoryBus, InMemoryConsumer


class PatientBus(InMemoryBus):
    """Its consumers' polls wait 60 s for a record, whatever the caller asks: a loop that
    stops within seconds was woken, it did not wait for its poll's timeout."""

    def consumer(self, topics: Sequence[str], group: str) -> "PatientConsumer":
        return PatientConsumer(self, tuple(topics), group)


class PatientConsumer(InMemoryConsumer):
    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        return await super().next_batch(max_records, 60)
