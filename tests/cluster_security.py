"""A real ``csms security`` process for end-to-end tests (next to tests/cluster.py's)."""

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster import Component, Infra, free_port, platform_env

SCHEMA = "security"
ORGANIZATION = "Test CPO"


def security(
    infra: Infra, group: str, name: str, log_dir: Path, ca_dir: Path, **extra: str
) -> Component:
    """One security replica of the cluster ``group``, in its own consumer group, with the
    CA in ``ca_dir`` (replicas given the same directory share one CA)."""
    port = free_port()
    env = {
        **platform_env(infra, group),
        "CSMS_SECURITY_API_PORT": str(port),
        "CSMS_SECURITY_CONSUMER_GROUP": f"csms-security-{group}",
        "CSMS_SECURITY_CA_DIR": str(ca_dir),
        "CSMS_SECURITY_ORGANIZATION": ORGANIZATION,
        **extra,
    }
    return Component("security", port, env, log_dir / f"{name}.log")


async def _drop_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    await engine.dispose()


def reset_security(infra: Infra) -> None:
    """Empty the security schema so a module starts from nothing."""
    asyncio.run(_drop_schema(infra.database_url))
