"""Fixtures every test tier may use: the real brokers the integration tests need.

``scripts/test.sh`` starts Kafka, Redis and PostgreSQL with ``scripts/infra.sh`` and
exports their addresses; run alone, pytest starts them itself through the same script.
Each pytest run gets a database of its own, so two runs never see each other's schemas;
Redis keys and Kafka consumer groups are made unique by the tests themselves.
"""

import asyncio
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.cluster import Infra

REPO = Path(__file__).resolve().parent


def _infra_from_script() -> dict[str, str]:
    subprocess.run([str(REPO / "scripts/infra.sh"), "start"], check=True)
    printed = subprocess.run(
        [str(REPO / "scripts/infra.sh"), "env"], check=True, capture_output=True, text=True
    ).stdout
    values: dict[str, str] = {}
    for line in printed.splitlines():
        for word in shlex.split(line.removeprefix("export ")):
            name, _, value = word.partition("=")
            values[name] = value
    return values


async def _create_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Real Kafka, Redis and PostgreSQL (from the environment, or started now)."""
    values = dict(os.environ)
    if "CSMS_TEST_KAFKA_BOOTSTRAP" not in values:
        values.update(_infra_from_script())
    database_url = make_url(values["CSMS_TEST_DATABASE_URL"])
    server_url = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"csms_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(server_url, name))
    try:
        yield Infra(
            values["CSMS_TEST_KAFKA_BOOTSTRAP"],
            values["CSMS_TEST_REDIS_URL"],
            database_url.set(database=name).render_as_string(hide_password=False),
        )
    finally:
        asyncio.run(_drop_database(server_url, name))
