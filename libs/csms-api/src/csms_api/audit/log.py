"""Writing the audit trail: one ``AuditLog`` per service process (per source).

A command sent while a state-changing REST call is being served (``deferred``, which
``AuditMiddleware`` opens around each such call) is not written before the REST answer:
its entry is kept with the call's and both are stored in one transaction right after the
answer has been sent, before the call's task ends. So no answer waits for its audit rows,
and they are as durable as the call's own entry always was. Any other command (a
service's own) is written at once.

It never raises: an entry that cannot be written is logged in full (it holds nothing
secret) and the action it describes stands.
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.audit.store import AuditEntry, add_entries
from csms_core.router import CommandResult

logger = logging.getLogger(__name__)


def actor_kind(actor: str) -> str:
    """``api-key`` / ``jwt`` / ``service`` from ``kind:subject``; ``anonymous`` otherwise."""
    kind = actor.partition(":")[0]
    return kind if kind in ("api-key", "jwt", "service") else "anonymous"


@dataclass
class Deferred:
    """The command entries of the REST call being served, written after its answer."""

    entries: list[AuditEntry] = field(default_factory=list)
    open: bool = True  # closed once written: a later command (a task the call left) writes


_deferred: ContextVar[Deferred | None] = ContextVar("csms_audit_deferred", default=None)


@contextmanager
def deferred() -> Iterator[Deferred]:
    """Keep the entries of the commands sent in this context for the caller to write."""
    held = Deferred()
    token = _deferred.set(held)
    try:
        yield held
    finally:
        _deferred.reset(token)


class AuditLog:
    """Records REST calls (``AuditMiddleware``) and commands (``CommandClient(audit=...)``)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], source: str) -> None:
        self._factory = factory
        self.source = source

    async def record(self, entry: AuditEntry) -> None:
        await self.record_many([entry])

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Store ``entries`` in one transaction (one by one if that fails: a bad entry
        loses no other)."""
        if not entries:
            return
        try:
            await add_entries(self._factory, entries)
        except Exception:
            if len(entries) == 1:
                dump = entries[0].model_dump(mode="json")
                logger.exception("could not record an audit entry: %s", dump)
                return
            for entry in entries:
                await self.record(entry)

    async def record_command(
        self, station_id: str, action: str, result: CommandResult, *, actor: str | None
    ) -> None:
        """A command sent to a station and its outcome (``CommandAudit``)."""
        who = actor or f"service:{self.source}"
        error = f", {result.error_code}" if result.error_code else ""
        sent = f"command {result.command_id}" if result.command_id else "not sent"
        entry = AuditEntry(
            kind="command",
            actor=who,
            actor_kind=actor_kind(who),
            action=action,
            station_id=station_id,
            outcome=result.outcome.value,
            detail=f"{sent}{error}",
            source=self.source,
        )
        held = _deferred.get()
        if held is not None and held.open:
            held.entries.append(entry)
        else:
            await self.record(entry)
