"""The distributed router on Redis.

- Route: ``csms:route:{station}`` holds the route as JSON with a TTL. Register
  overwrites (the newest connection wins); refresh and unregister run as Lua
  scripts that touch the key only while it still holds our own route.
- Mailbox: the stream ``csms:mailbox:{address}``, read with a blocking XREAD
  from the moment the reader starts. Mailboxes expire when nobody writes to
  them for ``MAILBOX_TTL_S`` so a dead process leaves nothing behind.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csms_core.router.base import (
    CallAnswer,
    CommandResult,
    Route,
    StationCommand,
    router_message_adapter,
)

logger = logging.getLogger(__name__)

Message = StationCommand | CallAnswer | CommandResult
MAILBOX_TTL_S = 300
MAILBOX_MAX_LENGTH = 100_000
_MAX_SEQUENCE = 2**64 - 1  # the largest sequence part of a stream entry id

_REFRESH = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_UNREGISTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _route_key(station_id: str) -> str:
    return f"csms:route:{station_id}"


def _mailbox_key(address: str) -> str:
    return f"csms:mailbox:{address}"


class RedisRouter:
    def __init__(self, url: str, **options: Any) -> None:
        """``options``: redis-py's connection arguments (``CommonSettings.redis_options``:
        username, password, TLS files)."""
        # Pooled connections die with a Redis restart; retrying on a fresh connection
        # makes the first command after the restart succeed instead of failing.
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=False,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=15,
            **options,
        )
        self._refresh = self._redis.register_script(_REFRESH)
        self._unregister = self._redis.register_script(_UNREGISTER)

    async def __aenter__(self) -> Self:
        await self._redis.ping()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._redis.aclose()

    async def register(self, route: Route, ttl_s: float) -> None:
        await self._redis.set(
            _route_key(route.station_id), route.model_dump_json(), px=int(ttl_s * 1000)
        )

    async def refresh(self, routes: list[Route], ttl_s: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                await self._refresh(
                    keys=[_route_key(route.station_id)],
                    args=[route.model_dump_json(), int(ttl_s * 1000)],
                    client=pipe,
                )
            await pipe.execute()

    async def unregister(self, route: Route) -> None:
        await self._unregister(keys=[_route_key(route.station_id)], args=[route.model_dump_json()])

    async def lookup(self, station_id: str) -> Route | None:
        raw = await self._redis.get(_route_key(station_id))
        return None if raw is None else Route.model_validate_json(raw)

    async def send(self, address: str, message: Message) -> None:
        key = _mailbox_key(address)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                key, {b"m": message.model_dump_json()}, maxlen=MAILBOX_MAX_LENGTH, approximate=True
            )
            pipe.expire(key, MAILBOX_TTL_S)
            await pipe.execute()

    async def open_mailbox(self, address: str) -> AsyncIterator[Message]:
        # Start at the server's clock, not "$": "$" re-read after an empty block would skip
        # whatever arrived between two XREAD calls. XREAD returns ids strictly after the one
        # given, and a message added in this same millisecond gets id "{now}-0": start just
        # before this millisecond so it is not skipped.
        seconds, microseconds = await self._redis.time()
        now_ms = seconds * 1000 + microseconds // 1000
        return self._read(_mailbox_key(address), f"{now_ms - 1}-{_MAX_SEQUENCE}")

    async def _read(self, key: str, last_id: str | bytes) -> AsyncIterator[Message]:
        """Read the mailbox; survives Redis restarts by reconnecting and going on."""
        while True:
            try:
                answer: Any = await self._redis.xread({key: last_id}, block=1000, count=500)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                logger.warning("mailbox %s: redis unavailable (%r); retrying", key, exc)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    yield router_message_adapter.validate_json(fields[b"m"])
