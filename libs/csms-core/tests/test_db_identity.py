"""Station identity on SQLite: attached schema file, idempotent migrations, the store."""

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import create_engine, session_factory
from csms_core.identity import (
    SCHEMA,
    IdentityStore,
    assign_site,
    hash_password,
    migrate_identity,
    site_of,
    stations_on,
    unassign_site,
    verify_password,
)
from csms_core.identity import store as identity_store


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}", schemas=[SCHEMA])
    yield engine
    await engine.dispose()


def database_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("*.db"))


@pytest.fixture
async def store(engine: AsyncEngine) -> IdentityStore:
    await migrate_identity(engine)
    return IdentityStore(session_factory(engine))


async def test_the_schema_is_an_attached_file_next_to_the_main_one(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await migrate_identity(engine)

    assert database_files(tmp_path) == ["csms.access.db", "csms.db", "csms.identity.db"]
    async with engine.connect() as connection:
        tables = await connection.execute(
            text("SELECT name FROM identity.sqlite_master WHERE type = 'table' ORDER BY name")
        )
        assert tables.scalars().all() == ["alembic_version", "station_identity", "station_site"]


async def test_migrating_twice_is_a_no_op(engine: AsyncEngine) -> None:
    await migrate_identity(engine)
    await migrate_identity(engine)

    async with engine.connect() as connection:
        versions = await connection.execute(
            text("SELECT version_num FROM identity.alembic_version")
        )
        assert versions.scalars().all() == ["0003"]


async def test_save_get_update_delete(store: IdentityStore) -> None:
    assert await store.get("CP-001") is None

    created = await store.save("CP-001", password="s3cret-Passw0rd")
    stored = await store.get("CP-001")
    assert stored is not None
    assert (stored.station_id, stored.lenient) == ("CP-001", False)
    assert stored.password_hash == created.password_hash
    assert stored.password_hash is not None
    assert verify_password("s3cret-Passw0rd", stored.password_hash)
    assert not verify_password("wrong", stored.password_hash)

    await store.save("CP-001", lenient=True)  # the password stays as it was
    updated = await store.get("CP-001")
    assert updated is not None
    assert (updated.lenient, updated.password_hash) == (True, stored.password_hash)
    assert updated.updated_at >= stored.updated_at

    await store.delete("CP-001")
    assert await store.get("CP-001") is None
    await store.delete("CP-001")  # deleting what is gone is fine


async def test_a_station_without_password(store: IdentityStore) -> None:
    await store.save("CP-002", lenient=True)
    identity = await store.get("CP-002")
    assert identity is not None
    assert (identity.password_hash, identity.lenient) == (None, True)


def test_password_hash_is_salted_pbkdf2() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")

    assert first != second  # a fresh salt each time
    scheme, iterations, _salt, _digest = first.split("$")
    assert (scheme, iterations) == ("pbkdf2_sha256", "200000")
    assert verify_password("s3cret", first)
    assert verify_password("s3cret", second)
    assert not verify_password("S3cret", first)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text",
        "md5$1$abc$def",
        "pbkdf2_sha256$1$a$b$c",
        # corrupted rows: refused, not an exception in the middle of a handshake
        "pbkdf2_sha256$many$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$0$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$1000$not base64!$ZGlnZXN0",
    ],
)
def test_verify_refuses_unknown_hash_formats(stored: str) -> None:
    assert not verify_password("plain-text", stored)


async def test_security_profile_is_kept_with_the_other_attributes(store: IdentityStore) -> None:
    await store.save("CP-001", password="s3cret-Passw0rd", security_profile=2)
    await store.save("CP-001", lenient=True)

    stored = await store.get("CP-001")
    assert stored is not None
    assert (stored.security_profile, stored.lenient) == (2, True)


async def test_the_station_directory_says_which_site_a_station_is_on(engine: AsyncEngine) -> None:
    await migrate_identity(engine)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await assign_site(session, "CP-1", "depot-1")
        await assign_site(session, "CP-2", "depot-2")
    async with factory() as session, session.begin():
        await assign_site(session, "CP-2", "depot-1")  # moved
        await unassign_site(session, "CP-1")

    async with factory() as session:
        assert await site_of(session, "CP-1") is None
        assert await site_of(session, "CP-2") == "depot-1"
        on_depot_1 = (await session.exec(stations_on({"depot-1"}))).all()
    assert on_depot_1 == ["CP-2"]


async def test_a_password_is_hashed_off_the_event_loop(
    store: IdentityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PBKDF2 takes ~0.1 s: on the loop, every station of the process would wait for it."""
    threads: list[threading.Thread] = []

    def hash_recording_thread(password: str) -> str:
        threads.append(threading.current_thread())
        return hash_password(password)

    monkeypatch.setattr(identity_store, "hash_password", hash_recording_thread)
    saved = await store.save("CP-001", password="s3cret-Passw0rd")

    assert threads and threads[0] is not threading.main_thread()
    assert saved.password_hash is not None
    assert verify_password("s3cret-Passw0rd", saved.password_hash)
