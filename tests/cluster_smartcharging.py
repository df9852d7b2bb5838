"""A real ``csms smartcharging`` process for end-to-end tests (next to tests/cluster.py's)."""

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster import Component, Infra, free_port, platform_env

SCHEMA = "smartcharging"


def smartcharging(infra: Infra, group: str, name: str, log_dir: Path, **extra: str) -> Component:
    """One smart charging replica of the cluster ``group`` (its topic namespace), in its own
    consumer group, allocating every second."""
    port = free_port()
    env = {
        **platform_env(infra, group),
        "CSMS_SMARTCHARGING_API_PORT": str(port),
        "CSMS_SMARTCHARGING_CONSUMER_GROUP": consumer_group(group),
        "CSMS_ALLOCATION_TICK_S": "1",
        **extra,
    }
    return Component("smartcharging", port, env, log_dir / f"{name}.log")


async def _drop_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    await engine.dispose()


def reset_smartcharging(infra: Infra) -> None:
    """Empty the smartcharging schema so a module starts from nothing."""
    asyncio.run(_drop_schema(infra.database_url))


def consumer_group(group: str) -> str:
    return f"csms-smartcharging-{group}"
