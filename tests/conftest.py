"""Fixtures for the end-to-end tests: real brokers (started by scripts/infra.sh) and processes."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests import cluster
from tests.cluster import Component, Infra


async def _drop_schemas(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        for schema in ("sessions", "identity"):
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


def reset_state(infra: Infra) -> None:
    """Empty the run's database schemas so each module starts from nothing.

    Redis is shared with whatever else runs: tests use unique station and gateway ids.
    """
    asyncio.run(_drop_schemas(infra.database_url))


class Cluster:
    """Two gateways and two sessions replicas, as in a horizontally scaled deployment.

    ``admin`` is the Authorization header of an admin API key made for it.
    """

    def __init__(self, infra: Infra, log_dir: Path, **extra_env: str) -> None:
        self.infra = infra
        self.admin = asyncio.run(cluster.admin_headers(infra))
        self.group = f"csms-sessions-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir
        self.gateways = [
            cluster.gateway(
                infra, self.group, f"gw-{name}-{uuid.uuid4().hex[:4]}", log_dir, **extra_env
            )
            for name in ("a", "b")
        ]
        self.sessions = [
            cluster.sessions(infra, self.group, f"sessions-{n}", log_dir, **extra_env)
            for n in (1, 2)
        ]

    def topic(self, name: str) -> str:
        """The physical name of contract topic ``name`` in this cluster's namespace."""
        return cluster.topic_prefix(self.group) + name

    @property
    def components(self) -> list[Component]:
        return [*self.sessions, *self.gateways]

    def ocpp_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.gateways[index].port}"

    def api_url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.sessions[index].port}/api/v1"

    def start(self) -> None:
        # The first sessions replica runs the migrations before the others start.
        self.start_with(timeout_s=60)

    def start_with(self, *more: Component, timeout_s: float) -> None:
        """This cluster and ``more`` components of the test's: the first sessions replica runs
        the migrations, then every other process starts at once."""
        self.sessions[0].start(timeout_s)
        cluster.start_together([*self.components[1:], *more], timeout_s)

    def stop(self, *more: Component) -> None:
        """This cluster and ``more`` components stopped at once."""
        cluster.stop_together([*more, *self.components])
        # Its topics go with it: a broker that keeps every run's partitions takes ever
        # longer to recover after a crash (43 s with 3,383 partition directories).
        asyncio.run(
            cluster.retire_topics(self.infra.kafka_bootstrap, cluster.topic_prefix(self.group))
        )


@pytest.fixture(scope="module")
def running_cluster(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reset_state(infra)
    csms = Cluster(infra, tmp_path_factory.mktemp("logs"))
    try:
        csms.start()
        yield csms
    finally:
        csms.stop()
