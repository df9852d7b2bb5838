"""Writing the audit trail: one ``AuditLog`` per service process.

It never raises: an audit entry that cannot be written is logged in full (it holds
nothing secret) and the action it describes stands.
"""

import logging

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.audit.store import AuditEntry, add_entry
from csms_core.router import CommandResult

logger = logging.getLogger(__name__)


def actor_kind(actor: str) -> str:
    """``api-key`` / ``jwt`` / ``service`` from ``kind:subject``; ``anonymous`` otherwise."""
    kind = actor.partition(":")[0]
    return kind if kind in ("api-key", "jwt", "service") else "anonymous"


class AuditLog:
    """Records REST calls (``AuditMiddleware``) and commands (``CommandClient(audit=...)``)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], source: str) -> None:
        self._factory = factory
        self.source = source

    async def record(self, entry: AuditEntry) -> None:
        try:
            await add_entry(self._factory, entry)
        except Exception:
            logger.exception("could not record an audit entry: %s", entry.model_dump(mode="json"))

    async def record_command(
        self, station_id: str, action: str, result: CommandResult, *, actor: str | None
    ) -> None:
        """A command sent to a station and its outcome (``CommandAudit``)."""
        who = actor or f"service:{self.source}"
        error = f", {result.error_code}" if result.error_code else ""
        sent = f"command {result.command_id}" if result.command_id else "not sent"
        await self.record(
            AuditEntry(
                kind="command",
                actor=who,
                actor_kind=actor_kind(who),
                action=action,
                station_id=station_id,
                outcome=result.outcome.value,
                detail=f"{sent}{error}",
                source=self.source,
            )
        )
