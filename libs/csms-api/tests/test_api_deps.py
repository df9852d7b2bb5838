"""ServiceBinding: each router serves its own service instance, with sessions of its database."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.deps import ServiceBinding
from csms_core.db import create_engine, session_factory


class Replica:
    def __init__(self, name: str, factory: async_sessionmaker[AsyncSession]) -> None:
        self.name = name
        self.factory = factory


_binding = ServiceBinding[Replica]("csms_test_replica")
ReplicaDep = Annotated[Replica, Depends(_binding.get)]
SessionDep = Annotated[AsyncSession, Depends(_binding.session)]


def replica_router(replica: Replica) -> APIRouter:
    router = APIRouter(dependencies=[_binding.bind(replica)])

    @router.get("/who")
    async def who(service: ReplicaDep, session: SessionDep) -> dict[str, str]:
        # The session is one of this replica's own database (the file names it).
        name = await session.scalar(text("SELECT name FROM who"))
        return {"service": service.name, "database": str(name)}

    return router


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[list[Replica]]:
    engines = [create_engine(f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}") for n in "ab"]
    try:
        for name, engine in zip("ab", engines, strict=True):
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE who (name TEXT)"))
                await connection.execute(text("INSERT INTO who VALUES (:n)"), {"n": f"db-{name}"})
        yield [Replica(name, session_factory(e)) for name, e in zip("ab", engines, strict=True)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_each_router_gets_its_own_service_and_its_sessions(replicas: list[Replica]) -> None:
    """Two instances of one service mounted in one app (as the embedded mode mounts several
    services' routers) never see each other's service or database."""
    app = FastAPI()
    app.include_router(replica_router(replicas[0]), prefix="/a")
    app.include_router(replica_router(replicas[1]), prefix="/b")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first, second = (await client.get("/a/who")), (await client.get("/b/who"))
    assert first.json() == {"service": "a", "database": "db-a"}
    assert second.json() == {"service": "b", "database": "db-b"}
