"""Which replica allocates, and how the others tell it what changed.

With several replicas on one PostgreSQL, one leads: it holds a session advisory lock on a
connection of its own and ``LISTEN``s on ``DIRTY_CHANNEL`` there. The others consume and
serve REST, and pass the changes they see on to the leader (``NOTIFY``; the leader's tick
covers a notification that is lost). On SQLite there is only one replica: it always leads.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger(__name__)

LEADER_LOCK = 0x5C0A11  # pg advisory lock key of the allocating replica
DIRTY_CHANNEL = "csms_smartcharging_dirty"  # pg NOTIFY payload: "<site id> <reason>"

Changed = Callable[[str, str], None]  # (site id, reason): a change another replica saw


class Leadership:
    """The leader lock of one replica, and the changes it forwards while it does not lead."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._leader: AsyncConnection | None = None
        self._forward: dict[str, str] = {}  # changes for the leader (we are not it)
        self._forward_wake = asyncio.Event()
        self._changed: Changed = _ignore

    def on_change(self, changed: Changed) -> None:
        """Who hears, while this replica leads, of the changes the others forward."""
        self._changed = changed

    @property
    def shared(self) -> bool:
        """Replicas may share the database (PostgreSQL); on SQLite there is only one."""
        return self._engine.dialect.name == "postgresql"

    @property
    def leads(self) -> bool:
        """This replica allocates (always so on SQLite, where there is only one)."""
        return not self.shared or self._leader is not None

    def tell_leader(self, site_id: str, reason: str) -> None:
        """Pass a change on to the leader, unless this replica is the leader (or the only one).

        Changes of one site fold into one notification: the latest reason names it."""
        if self.shared and self._leader is None:
            self._forward[site_id] = reason
            self._forward_wake.set()

    async def check(self) -> bool:
        """Lead if no one does (PostgreSQL session advisory lock) and say whether we lead.

        A leader's check also ends its idle transaction, so the notifications it listens
        for are delivered; SQLite: always leading."""
        if not self.shared:
            return True
        try:
            if self._leader is not None:
                await self._leader.execute(text("SELECT 1"))
                await self._leader.commit()  # notifications arrive between transactions
                return True
            connection = await self._engine.connect()
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}
            )
            if got and await self._listen(connection):
                self._leader = connection
                self._forward.clear()
                return True
            await connection.close()  # (which also lets go of the lock, if it was got)
        except DBAPIError as exc:
            logger.warning("leadership check failed: %r", exc)
            self._leader = None
        return False

    async def forward(self, stopping: asyncio.Event) -> None:
        """Tell the leader what changed here (PostgreSQL NOTIFY) until ``stopping``."""
        while not stopping.is_set():
            await self._forward_wake.wait()
            self._forward_wake.clear()
            changes, self._forward = self._forward, {}
            if not changes or self._leader is not None:
                continue
            try:
                async with self._engine.begin() as connection:
                    for site_id, reason in changes.items():
                        await connection.execute(
                            text("SELECT pg_notify(:channel, :payload)"),
                            {"channel": DIRTY_CHANNEL, "payload": f"{site_id} {reason}"},
                        )
            except (DBAPIError, OSError) as exc:
                logger.warning("could not tell the leader about %s: %r", sorted(changes), exc)

    async def close(self) -> None:
        """Stop leading: the lock goes with the leader's connection."""
        if self._leader is not None:
            await self._leader.close()

    async def _listen(self, connection: AsyncConnection) -> bool:
        """LISTEN for the other replicas' changes on the leader's own connection."""
        try:
            raw = (await connection.get_raw_connection()).driver_connection
            if raw is not None:  # asyncpg's own connection
                await raw.add_listener(DIRTY_CHANNEL, self._on_notify)
            await connection.commit()
        except Exception as exc:  # noqa: BLE001 - asyncpg's own errors too: not leading then
            logger.warning("cannot listen for the other replicas' changes: %r", exc)
            return False
        return True

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        site_id, _, reason = payload.partition(" ")
        if site_id:
            self._changed(site_id, reason or "changed")


def _ignore(_site_id: str, _reason: str) -> None:
    return None
