"""Read what is on a Kafka topic, from the beginning to its current end (no consumer group)."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from csms_core.envelope import Envelope


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(TopicPartition(topic, p["partition"]) for p in description["partitions"])


async def read_topic(bootstrap: str, topic: str, station_id: str | None = None) -> list[Envelope]:
    """Every envelope on ``topic`` (optionally only one station's), in partition order.

    One station's records share a partition (key = station id), so its events come
    back in the order they were written.
    """
    partitions = await _partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        envelopes: list[Envelope] = []
        for partition in partitions:
            while await consumer.position(partition) < end[partition]:
                batch = await consumer.getmany(partition, timeout_ms=1000)
                for record in batch.get(partition, []):
                    envelope = Envelope.from_bytes(record.value or b"")
                    if station_id is None or envelope.station_id == station_id:
                        envelopes.append(envelope)
        return envelopes
    finally:
        await consumer.stop()
