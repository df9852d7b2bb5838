"""What every consuming service runs: its consumer and its background work, side by side."""

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.bus import Bus, Handler, run_consumer
from csms_core.bus.batching import BatchedConsumer, BatchHandler, BatchLimits
from csms_core.db import consumer_lanes, session_factory
from csms_core.settings import CommonSettings


def batch_limits(settings: CommonSettings, engine: AsyncEngine) -> BatchLimits:
    """The batched consumer's limits from the settings (one lane on SQLite)."""
    return BatchLimits(
        max_records=settings.consumer_batch_records,
        max_per_transaction=settings.consumer_batch_transaction,
        answer_budget_s=settings.consumer_answer_budget_ms / 1000,
        max_answer_budget_s=settings.consumer_answer_budget_max_ms / 1000,
        lanes=consumer_lanes(engine, settings.consumer_batch_lanes),
        lanes_from=settings.consumer_batch_lanes_from,
        poll_ahead=settings.consumer_poll_ahead,
    )


async def consume_and_run(
    name: str,
    *,
    bus: Bus,
    topic_names: Sequence[str],
    group: str,
    handler: Handler | BatchHandler[Any],
    engine: AsyncEngine,
    concurrency: int,
    limits: BatchLimits | None = None,
    stopping: asyncio.Event,
    background: Mapping[str, Coroutine[Any, Any, None]],
    ready: Sequence[asyncio.Event],
) -> None:
    """Consume ``topic_names`` as ``group`` and run ``background`` until ``stopping``; set
    every ``ready`` once consuming.

    A ``BatchHandler`` runs on the batched consumer (``limits``: ``batch_limits``); a
    one-event handler on ``run_consumer``, ``concurrency`` stations side by side (1 on
    SQLite).
    """
    consuming = asyncio.Event()
    if isinstance(handler, BatchHandler):
        batched = BatchedConsumer(
            bus, group, handler, session_factory(engine), limits or BatchLimits()
        )
        consumer = batched.run(topic_names, stopping=stopping, ready=consuming)
    else:
        consumer = run_consumer(
            bus,
            topic_names,
            group,
            handler,
            stopping=stopping,
            ready=consuming,
            concurrency=consumer_lanes(engine, concurrency),
        )
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer, name=f"{name} consumer")
        for task_name, work in background.items():
            tasks.create_task(work, name=task_name)
        await consuming.wait()
        for event in ready:
            event.set()
