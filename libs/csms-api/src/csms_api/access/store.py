"""The ``access.api_key`` table: API keys, stored as a SHA-256 of their secret.

A key reads ``csms_<key id>_<secret>``: the key id (public, 12 hex digits) finds the
row, the secret (256 random bits) proves possession. A random 256-bit secret needs no
slow password hash: SHA-256 of it cannot be reversed, and checking it costs
microseconds, so no request waits on a key derivation.

A store may remember the keys it verified (``VerifiedKeys``) for a few seconds, so that a
request needs no database read: a key revoked through this store is forgotten at once, one
revoked elsewhere (another replica, the CLI) is refused within that time. An expiry is
exact either way.
"""

import hashlib
import hmac
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

    def get(self, token: str) -> ApiKey | None:
        digest = _digest(token)
        held = self._keys.get(digest)
        if held is None:
            return None
        verified_at, key = held
        if self._clock() - verified_at >= self.ttl_s:
            del self._keys[digest]
            return None
        self._keys.move_to_end(digest)
        return key

    def put(self, token: str, key: ApiKey) -> None:
        if self.ttl_s <= 0:
            return
        self._keys[_digest(token)] = (self._clock(), key)
        self._keys.move_to_end(_digest(token))
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Forget every token of ``key_id`` (it was revoked)."""
        for digest in [d for d, (_, key) in self._keys.items() if key.key_id == key_id]:
            del self._keys[digest]


class ApiKeyStore:
    def __init__(
        self, factory: async_sessionmaker[AsyncSession], verified: VerifiedKeys | None = None
    ) -> None:
        """``verified``: remember verified keys for a while (default: none, every check
        reads the database)."""
        self._factory = factory
        self._verified = verified or VerifiedKeys(0)

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
        key = self._verified.get(token)
        if key is None:
            parts = _split(token)
            if parts is None:
                return Verified(KeyCheck.INVALID)
            key_id, secret = parts
            async with self._factory() as session:
                key = await session.get(ApiKey, key_id)
            if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
                return Verified(KeyCheck.INVALID)
            if key.revoked_at is not None:
                return Verified(KeyCheck.REVOKED, key)
            self._verified.put(token, key)
        if key.expires_at is not None and key.expires_at <= utc_now():
            return Verified(KeyCheck.EXPIRED, key)
        return Verified(KeyCheck.VALID, key)

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
