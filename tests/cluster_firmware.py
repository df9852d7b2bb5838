"""A real ``csms firmware`` process for end-to-end tests (next to tests/cluster.py's)."""

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster import Component, Infra, free_port, platform_env

SCHEMA = "firmware"


def firmware(infra: Infra, group: str, name: str, log_dir: Path, **extra: str) -> Component:
    """One firmware replica of the cluster ``group`` (its topic namespace), in its own
    consumer group, planning every second, its store under ``log_dir``."""
    port = free_port()
    env = {
        **platform_env(infra, group),
        "CSMS_FIRMWARE_API_PORT": str(port),
        "CSMS_FIRMWARE_CONSUMER_GROUP": f"csms-firmware-{group}",
        "CSMS_FIRMWARE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CSMS_FIRMWARE_STORE_DIR": str(log_dir / f"{name}-store"),
        "CSMS_CAMPAIGN_TICK_S": "1",
        **extra,
    }
    return Component("firmware", port, env, log_dir / f"{name}.log")


async def _drop_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    await engine.dispose()


def reset_firmware(infra: Infra) -> None:
    """Empty the firmware schema so a module starts from nothing."""
    asyncio.run(_drop_schema(infra.database_url))
