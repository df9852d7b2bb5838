"""The distributed router on Redis.

- Route: ``csms:route:{station}`` holds the route as JSON with a TTL. Register
  overwrites (the newest connection wins); refresh and unregister run as Lua
  scripts that touch the key only while it still holds our own route; the ``_many``
  forms send one pipeline for many routes (a gateway's reconnect storm).
- A command goes to the station's gateway in one round trip (``send_routed``: a script
  reads the route and appends to the mailbox it names, with its connection id).
- Mailbox: the stream ``csms:mailbox:{address}``, read with a blocking XREAD
  from the moment the reader starts. Mailboxes expire when nobody writes to
  them for ``MAILBOX_TTL_S`` so a dead process leaves nothing behind. An entry
  that is no message (not JSON, no ``m`` field, a ``kind`` this version does not
  know during a rolling upgrade) is logged with its stream id, counted in
  ``csms_mailbox_undecodable_total`` and skipped: the reader goes on (the entry
  stays in the stream until it expires, for an operator to read with XRANGE).
"""

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self

from prometheus_client import Counter
from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csms_core.calls.declaration import Declaration
from csms_core.calls.directory import ANNOUNCE_TTL_S, WITHDRAWN_KEPT_S, Announced
from csms_core.router.base import Message, Route, StationCommand, router_message_adapter

logger = logging.getLogger(__name__)

MAILBOX_TTL_S = 300
MAILBOX_MAX_LENGTH = 100_000
_MAX_SEQUENCE = 2**64 - 1  # the largest sequence part of a stream entry id
_BLOCK_MS = 1000  # one XREAD waits this long for an entry
POOL_CONNECTIONS = 100  # redis-py's default pool size
POOL_WAIT_S = 10.0  # a command waits this long for a pooled connection
_SHOWN_BYTES = 200  # of an undecodable entry, in the log

undecodable_entries = Counter(
    "csms_mailbox_undecodable_total",
    "Mailbox entries that were no message of this version (logged and skipped)",
    ["reader"],
)

_REFRESH = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] the route; ARGV: the version the command was built for, the command's JSON before
# and after its connection id's value, the mailbox's max length and TTL. The mailbox key is
# made from the route (a standalone Redis: the script may touch a key it was not given).
_SEND_ROUTED = """
local raw = redis.call('GET', KEYS[1])
if raw == false then
  return false
end
local route = cjson.decode(raw)
if route['ocpp_version'] ~= ARGV[1] then
  return raw
end
local mailbox = 'csms:mailbox:gateway:' .. route['gateway_id']
local message = ARGV[2] .. cjson.encode(route['connection_id']) .. ARGV[3]
redis.call('XADD', mailbox, 'MAXLEN', '~', ARGV[4], '*', 'm', message)
redis.call('EXPIRE', mailbox, ARGV[5])
return raw
"""
# Stands for the connection id in a command's JSON until the script puts the route's there
# (random: no payload can hold it by chance or on purpose).
_CONNECTION_PLACEHOLDER = f"connection-{secrets.token_hex(16)}"
_UNREGISTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _raise_if_cancelled() -> None:
    """End the reading task if it was cancelled during a blocking XREAD that redis-py
    (8.1) returned from anyway: now and then it swallows the cancellation of a read
    just sent, and the reader read on for ever (a CommandClient's exit hung there)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _route_key(station_id: str) -> str:
    return f"csms:route:{station_id}"


def _route_or_none(raw: bytes | str | None) -> Route | None:
    """A stored route; None for none, and for a value that is no route (logged: it is
    replaced or expires, and nothing can be delivered by it)."""
    if raw is None:
        return None
    try:
        return Route.model_validate_json(raw)
    except ValidationError:
        logger.warning("a route key holds no route: %r", raw[:200])
        return None


def _mailbox_key(address: str) -> str:
    return f"csms:mailbox:{address}"


class RedisRouter:
    def __init__(self, url: str, namespace: str = "", **options: Any) -> None:
        """``namespace``: the deployment's (its topic prefix) for the services' declarations;
        ``options``: redis-py's connection arguments (``CommonSettings.redis_options``:
        username, password, TLS files)."""
        # Pooled connections die with a Redis restart; retrying on a fresh connection
        # makes the first command after the restart succeed instead of failing. A command
        # finding every pooled connection busy (a reconnect storm's thousands of route
        # registrations at once) waits for one instead of failing (MaxConnectionsError).
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_CONNECTIONS,
            timeout=POOL_WAIT_S,
            decode_responses=False,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=15,
            **options,
        )
        self._redis: Redis = Redis.from_pool(pool)
        # Declarations of one deployment (csms_core.calls.directory) under its own key, so
        # deployments sharing a Redis (test clusters) do not route to each other's services.
        self._replicas_key = f"csms:answers:{namespace}"
        self._refresh = self._redis.register_script(_REFRESH)
        self._unregister = self._redis.register_script(_UNREGISTER)
        self._send_routed = self._redis.register_script(_SEND_ROUTED)

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

    async def warm(self, connections: int) -> None:
        """``connections`` PINGs at once: the pool opens a connection for each (it keeps
        them, up to ``POOL_CONNECTIONS``)."""
        await asyncio.gather(*(self._redis.ping() for _ in range(connections)))

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

    async def register_many(self, routes: Sequence[Route], ttl_s: float) -> list[Route | None]:
        """One pipeline of ``SET ... GET`` (Redis 6.2 or later): each route written and the
        one it replaced read in one atomic step."""
        if not routes:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.set(
                    _route_key(route.station_id),
                    route.model_dump_json(),
                    px=int(ttl_s * 1000),
                    get=True,
                )
            replaced = await pipe.execute()
        return [_route_or_none(raw) for raw in replaced]

    async def unregister_many(self, routes: Sequence[Route]) -> None:
        """One pipeline of the compare-and-delete script: a route another connection took
        over meanwhile (the station reconnected, here or elsewhere) stays."""
        if not routes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                await self._unregister(
                    keys=[_route_key(route.station_id)],
                    args=[route.model_dump_json()],
                    client=pipe,
                )
            await pipe.execute()

    async def lookup(self, station_id: str) -> Route | None:
        return _route_or_none(await self._redis.get(_route_key(station_id)))

    async def send_routed(self, command: StationCommand, ocpp_version: str) -> Route | None:
        """One round trip (a Lua script): GET the route, and XADD + EXPIRE the gateway's
        mailbox if the route speaks ``ocpp_version``."""
        placed = command.model_copy(update={"connection_id": _CONNECTION_PLACEHOLDER})
        before, after = placed.model_dump_json().split(f'"{_CONNECTION_PLACEHOLDER}"', 1)
        raw = await self._send_routed(
            keys=[_route_key(command.station_id)],
            args=[ocpp_version, before, after, MAILBOX_MAX_LENGTH, MAILBOX_TTL_S],
        )
        return None if raw is None else Route.model_validate_json(raw)

    async def send(self, address: str, message: Message) -> None:
        key = _mailbox_key(address)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                key, {b"m": message.model_dump_json()}, maxlen=MAILBOX_MAX_LENGTH, approximate=True
            )
            pipe.expire(key, MAILBOX_TTL_S)
            await pipe.execute()

    async def announce(self, declaration: Declaration, replica: str, ttl_s: float) -> None:
        """``{replicas key}:{party}:{replica}`` holds the declaration with a TTL; the set
        ``{replicas key}`` names every such key (stale names are dropped on reading)."""
        key = self._declaration_key(declaration.party, replica)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, declaration.model_dump_json(), px=int(ttl_s * 1000))
            pipe.sadd(self._replicas_key, key)
            await pipe.execute()

    async def withdraw(self, party: str, replica: str) -> None:
        """The declaration goes; the sorted set ``{replicas key}:withdrawn`` keeps the
        replica (scored by the time, in ms) for ``WITHDRAWN_KEPT_S``."""
        key = self._declaration_key(party, replica)
        now_ms = int(time.time() * 1000)
        kept_ms = int(WITHDRAWN_KEPT_S * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.srem(self._replicas_key, key)
            pipe.zadd(self._withdrawn_key, {replica: now_ms})
            pipe.zremrangebyscore(self._withdrawn_key, "-inf", now_ms - kept_ms)
            pipe.pexpire(self._withdrawn_key, kept_ms)
            await pipe.execute()

    async def withdrawn(self) -> frozenset[str]:
        since_ms = int((time.time() - WITHDRAWN_KEPT_S) * 1000)
        names = await self._redis.zrangebyscore(self._withdrawn_key, since_ms, "+inf")
        return frozenset(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    async def declarations(self) -> list[Announced]:
        keys = sorted(await self._redis.smembers(self._replicas_key))
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget(keys)
            for key in keys:
                pipe.pttl(key)
            values, *ttls_ms = await pipe.execute()
        announced, gone = [], []
        for key, raw, ttl_ms in zip(keys, values, ttls_ms, strict=True):
            if raw is None or ttl_ms == -2:  # its replica renewed nothing within the TTL
                gone.append(key)
                continue
            try:
                name = key.decode() if isinstance(key, bytes) else key
                replica = name.rsplit(":", 1)[-1]
                declaration = Declaration.model_validate_json(raw)
            except ValueError:
                logger.warning("ignoring an unreadable declaration %r", key)
                continue
            # -1: a key without a TTL (set by hand) is held as a fresh announcement
            ttl_s = ANNOUNCE_TTL_S if ttl_ms == -1 else ttl_ms / 1000
            announced.append(Announced(replica, declaration, ttl_s))
        if gone:
            await self._redis.srem(self._replicas_key, *gone)
        return announced

    def _declaration_key(self, party: str, replica: str) -> str:
        return f"{self._replicas_key}:{party}:{replica}"

    @property
    def _withdrawn_key(self) -> str:
        return f"{self._replicas_key}:withdrawn"

    async def send_many(self, messages: Sequence[tuple[str, Message]]) -> None:
        if not messages:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for address, message in messages:
                key = _mailbox_key(address)
                pipe.xadd(
                    key,
                    {b"m": message.model_dump_json()},
                    maxlen=MAILBOX_MAX_LENGTH,
                    approximate=True,
                )
            for key in {_mailbox_key(address) for address, _message in messages}:
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
            _raise_if_cancelled()
            try:
                answer: Any = await self._xread(key, last_id)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                logger.warning("mailbox %s: redis unavailable (%r); retrying", key, exc)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    message = _decode(key, entry_id, fields)
                    if message is not None:
                        yield message

    async def _xread(self, key: str, last_id: str | bytes) -> Any:
        """One blocking XREAD (at most ``_BLOCK_MS``). A reader cancelled meanwhile lets it
        finish before it stops: redis-py can lose a cancellation that lands in the client's
        own bookkeeping after a read, and the reader then blocked on for good (seen when a
        reply reader was cancelled right after a result)."""
        read = asyncio.create_task(self._xread_once(key, last_id), name=f"xread {key}")
        try:
            return await asyncio.shield(read)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(read, _BLOCK_MS / 1000 + 1.0)
            raise

    async def _xread_once(self, key: str, last_id: str | bytes) -> Any:
        return await self._redis.xread({key: last_id}, block=_BLOCK_MS, count=500)


def _decode(key: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Message | None:
    """The entry's message; None (logged, counted) if it is none."""
    raw = fields.get(b"m")
    if raw is None:
        _skip(key, entry_id, f"no field 'm' (fields: {sorted(fields)!r})", b"")
        return None
    try:
        return router_message_adapter.validate_json(raw)
    except ValidationError as exc:
        reason = f"{exc.error_count()} errors: {exc.errors(include_url=False)[:2]}"
        _skip(key, entry_id, reason, raw)
        return None


def _skip(key: str, entry_id: bytes, reason: str, raw: bytes) -> None:
    reader = key.removeprefix("csms:mailbox:").split(":", 1)[0]
    undecodable_entries.labels(reader).inc()
    logger.error(
        "mailbox %s: skipping entry %s, no message: %s (%r)",
        key,
        entry_id.decode(errors="replace"),
        reason,
        raw[:_SHOWN_BYTES],
    )
