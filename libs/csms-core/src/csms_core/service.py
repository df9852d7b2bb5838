"""What every consuming service runs: its consumer and its background work, side by side."""

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.bus import Bus, Handler, run_consumer
from csms_core.db import consumer_lanes


async def consume_and_run(
    name: str,
    *,
    bus: Bus,
    topic_names: Sequence[str],
    group: str,
    handler: Handler,
    engine: AsyncEngine,
    concurrency: int,
    stopping: asyncio.Event,
    background: Mapping[str, Coroutine[Any, Any, None]],
    ready: Sequence[asyncio.Event],
) -> None:
    """Consume ``topic_names`` as ``group`` (``concurrency`` stations side by side, 1 on
    SQLite) and run ``background`` until ``stopping``; set every ``ready`` once consuming."""
    consuming = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(
            run_consumer(
                bus,
                topic_names,
                group,
                handler,
                stopping=stopping,
                ready=consuming,
                concurrency=consumer_lanes(engine, concurrency),
            ),
            name=f"{name} consumer",
        )
        for task_name, work in background.items():
            tasks.create_task(work, name=task_name)
        await consuming.wait()
        for event in ready:
            event.set()
