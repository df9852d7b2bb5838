"""What every ``csms`` process opens: the bus, the router and the database (``Platform``),
and its logging and tracing.

It imports no service: ``csms gateway`` loads the gateway alone, each service command its
own service (``csms_cli.replicas``), and only ``csms up`` all of them (``csms_cli.embedded``).
"""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_cli.runtime import tune_gc
from csms_core.bus import Bus
from csms_core.bus.kafka import KafkaBus, KafkaFetch
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.router import Router
from csms_core.router.memory import InMemoryRouter
from csms_core.router.redis import RedisRouter
from csms_core.settings import CommonSettings
from csms_core.telemetry import setup_logging, setup_tracing


@dataclass(frozen=True)
class Platform:
    bus: Bus
    router: Router
    engine: AsyncEngine


@asynccontextmanager
async def open_platform(
    settings: CommonSettings, client_id: str, schemas: list[str]
) -> AsyncIterator[Platform]:
    bus: Bus = (
        KafkaBus(
            settings.kafka_bootstrap,
            client_id=client_id,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            topic_prefix=settings.kafka_topic_prefix,
            security=settings.kafka_options(),
            client=settings.kafka_client,
            rdkafka_security=settings.librdkafka_options(),
            fetch=KafkaFetch(
                settings.kafka_fetch_min_bytes,
                settings.kafka_fetch_max_wait_ms,
                settings.kafka_max_partition_fetch_bytes,
            ),
            linger_ms=settings.kafka_linger_ms,
        )
        if settings.kafka_bootstrap
        else InMemoryBus()
    )
    router: Router = (
        RedisRouter(
            settings.redis_url,
            namespace=settings.kafka_topic_prefix,
            **settings.redis_options(),
        )
        if settings.redis_url
        else InMemoryRouter()
    )
    engine = create_engine(settings.database_url, [IDENTITY_SCHEMA, ACCESS_SCHEMA, *schemas])
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await stack.enter_async_context(router)
        await stack.enter_async_context(bus)
        yield Platform(bus, router, engine)


def setup_process(settings: CommonSettings, service_name: str) -> bool:
    """Logging and tracing for this process; whether the logs are JSON lines."""
    json_logs = setup_logging(settings.log_level, json_lines=settings.log_json)
    setup_tracing(service_name, new_trace_ratio=settings.trace_sample_ratio)
    tune_gc()
    return json_logs
