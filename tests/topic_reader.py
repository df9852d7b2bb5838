"""Read what is on a Kafka topic, from the beginning to its current end (no consumer group)."""

from aiokafka import AIOKafkaConsumer, TopicPartition

from csms_core.envelope import Envelope


async def read_topic(bootstrap: str, topic: str, station_id: str | None = None) -> list[Envelope]:
    """Every envelope on ``topic`` (optionally only one station's), in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, partition)
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
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
