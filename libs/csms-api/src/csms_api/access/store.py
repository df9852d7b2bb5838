"""The ``access.api_key`` table: API keys, stored as a SHA-256 of their secret.

A key reads ``csms_<key id>_<secret>``: the key id (public, 12 hex digits) finds the
row, the secret (256 random bits) proves possession. A random 256-bit secret needs no
slow password hash: SHA-256 of it cannot be reversed, and checking it costs
microseconds, so no request waits on a key derivation.

A store may remember the keys it verified (``VerifiedKeys``) for a few seconds, so that a
request needs no database read: a key revoked through this store is forgotten at once, one
revoked elsewhere (another replica, the CLI) is refused within that time. An expiry is
exact either way. Requests that find a token not remembered at the same moment share one
database read of it (the first second of a busy client: a read each, until one finished).
A token used past half its time is read again in the background while the remembered key
still serves (refresh-ahead): a key in steady use never makes a request wait for the
database, and a remembered key is still never older than the time given, so the bound on
a revocation elsewhere holds as it did.
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, func
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.roles import Role
from csms_core.db import UtcDateTime, migrate, utc_now

logger = logging.getLogger(__name__)

SCHEMA = "access"
PREFIX = "csms_"
_KEY_ID_HEX = 12


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    __table_args__ = {"schema": SCHEMA}

    key_id: str = Field(primary_key=True, max_length=16)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    # None: every site; else the only sites whose stations the key sees.
    sites: list[str] | None = Field(default=None, sa_type=JSON)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    created_by: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class KeyCheck(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Verified:
    check: KeyCheck
    key: ApiKey | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def _split(token: str) -> tuple[str, str] | None:
    body = token.removeprefix(PREFIX)
    key_id, separator, secret = body[:_KEY_ID_HEX], body[_KEY_ID_HEX : _KEY_ID_HEX + 1], body[13:]
    if separator != "_" or not secret or any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


async def migrate_access(engine: AsyncEngine) -> None:
    await migrate(engine, "csms_api.access:migrations", SCHEMA)


class VerifiedKeys:
    """The API keys this process verified in the last ``ttl_s`` seconds, by a digest of
    the whole token (never the token itself): a hit needs no database read. At most
    ``capacity`` of them (the least recently used go first); ``ttl_s`` 0 remembers none."""

    def __init__(
        self,
        ttl_s: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._capacity = capacity
        self._clock = clock
        self._keys: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        self.generation = 0  # one more for each key forgotten (revoked here)

    def get(self, token: str) -> ApiKey | None:
        return self.lookup(token)[0]

    def lookup(self, token: str) -> tuple[ApiKey | None, bool]:
        """The key remembered for ``token`` (None: not within the TTL), and whether it is
        past half its time (to be read again, ahead of its end)."""
        digest = _digest(token)
        held = self._keys.get(digest)
        if held is None:
            return None, False
        verified_at, key = held
        age = self._clock() - verified_at
        if age >= self.ttl_s:
            del self._keys[digest]
            return None, False
        self._keys.move_to_end(digest)
        return key, age >= self.ttl_s / 2

    def put(self, token: str, key: ApiKey, *, read_in: int | None = None) -> None:
        """Remember ``key`` for ``token``; not if it was read in generation ``read_in`` and
        a key was forgotten since (a read under way while a revocation here committed must
        not bring the revoked key back)."""
        if self.ttl_s <= 0 or (read_in is not None and read_in != self.generation):
            return
        self._keys[_digest(token)] = (self._clock(), key)
        self._keys.move_to_end(_digest(token))
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Forget every token of ``key_id`` (it was revoked)."""
        self.generation += 1
        for digest in [d for d, (_, key) in self._keys.items() if key.key_id == key_id]:
            del self._keys[digest]

    def forget_token(self, token: str) -> None:
        """Forget ``token`` (read again, it no longer verifies)."""
        self._keys.pop(_digest(token), None)


class ApiKeyStore:
    def __init__(
        self, factory: async_sessionmaker[AsyncSession], verified: VerifiedKeys | None = None
    ) -> None:
        """``verified``: remember verified keys for a while (default: none, every check
        reads the database)."""
        self._factory = factory
        self._verified = verified or VerifiedKeys(0)
        # The database reads under way, by token digest: requests at once share one.
        self._reading: dict[str, asyncio.Task[Verified]] = {}

    async def create(
        self,
        role: Role,
        *,
        sites: Sequence[str] | None = None,
        expires_at: datetime | None = None,
        name: str = "",
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token; the token is shown once and never stored."""
        key_id = secrets.token_hex(_KEY_ID_HEX // 2)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            key_id=key_id,
            name=name,
            role=role.value,
            sites=sorted(set(sites)) if sites is not None else None,
            secret_sha256=_digest(secret),
            created_by=created_by,
            expires_at=expires_at,
        )
        async with self._factory() as session, session.begin():
            session.add(key)
        return key, f"{PREFIX}{key_id}_{secret}"

    async def verify(self, token: str) -> Verified:
        key, stale = self._verified.lookup(token)
        if key is None:
            # 0 remembers nothing: each request reads for itself, none shares an older read.
            shared = self._verified.ttl_s > 0
            verified = await (asyncio.shield(self._read(token)) if shared else self._check(token))
            if verified.check is not KeyCheck.VALID or verified.key is None:
                return verified
            key = verified.key
        elif stale:
            self._read(token)  # in the background; this request is served as remembered
        if key.expires_at is not None and key.expires_at <= utc_now():
            return Verified(KeyCheck.EXPIRED, key)
        return Verified(KeyCheck.VALID, key)

    def _read(self, token: str) -> asyncio.Task[Verified]:
        """The database read of ``token`` under way, or a new one (remembered if valid,
        forgotten if not: a refresh that finds the key revoked ends its use here)."""
        digest = _digest(token)
        reading = self._reading.get(digest)
        if reading is None:
            reading = asyncio.get_running_loop().create_task(self._check(token))
            self._reading[digest] = reading
            reading.add_done_callback(lambda done: self._read_done(digest, done))
        return reading

    def _read_done(self, digest: str, done: asyncio.Task[Verified]) -> None:
        if self._reading.get(digest) is done:
            del self._reading[digest]
        if not done.cancelled() and done.exception() is not None:  # retrieved: logged here
            logger.warning("API key check failed: %r", done.exception())

    async def _check(self, token: str) -> Verified:
        parts = _split(token)
        if parts is None:
            return Verified(KeyCheck.INVALID)
        key_id, secret = parts
        generation = self._verified.generation
        async with self._factory() as session:
            key = await session.get(ApiKey, key_id)
        if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
            self._verified.forget_token(token)
            return Verified(KeyCheck.INVALID)
        if key.revoked_at is not None:
            self._verified.forget_token(token)
            return Verified(KeyCheck.REVOKED, key)
        self._verified.put(token, key, read_in=generation)
        return Verified(KeyCheck.VALID, key)

    async def settled(self) -> None:
        """Once the reads under way (a refresh ahead included) are done; their failures are
        logged, not raised (before the engine closes, or to observe a refresh)."""
        await asyncio.gather(*self._reading.values(), return_exceptions=True)

    async def touch(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at ``at``."""
        async with self._factory() as session, session.begin():
            await session.exec(
                update(ApiKey).where(col(ApiKey.key_id) == key_id).values(last_used_at=at)
            )

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._factory() as session:
            return await session.get(ApiKey, key_id)

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        """Keys newest first, and how many there are."""
        async with self._factory() as session:
            rows = await session.exec(
                select(ApiKey)
                .order_by(col(ApiKey.created_at).desc(), col(ApiKey.key_id))
                .offset(offset)
                .limit(limit)
            )
            total = await session.exec(select(func.count()).select_from(ApiKey))
            return rows.all(), total.one()

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key (kept, for the record); None if there is no such key."""
        async with self._factory() as session, session.begin():
            key = await session.get(ApiKey, key_id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = utc_now()
                session.add(key)
        self._verified.forget(key_id)
        return key
