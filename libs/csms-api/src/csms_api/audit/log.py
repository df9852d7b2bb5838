"""Writing the audit trail: one ``AuditLog`` per service process (per source).

A command sent while a state-changing REST call is being served (``deferred``, which
``AuditMiddleware`` opens around each such call) is not written before the REST answer:
its entry is kept with the call's and both are stored in one transaction right after the
answer has been sent, before the call's task ends. So no answer waits for its audit rows,
and they are as durable as the call's own entry always was. Any other command (a
service's own) is written at once.

Entries recorded at the same time share one transaction (a group commit): whoever records
waits until its entries are stored, as before, but while one transaction is under way the
entries that arrive meanwhile are gathered and stored together in the next. Under load a
busy process writes one transaction where it wrote one per call (each took a pooled
connection: under a stall the pool of 10 overflowed), and no entry waits for a timer:
nothing is written behind anyone's back, so nothing is lost at a stop that was not lost
before (a call's task, its audit included, is done before the server stops).

It never raises: an entry that cannot be written is logged in full (it holds nothing
secret) and the action it describes stands.
"""

import asyncio
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
        # Entries waiting for the next transaction, each caller's with its waiter.
        self._queued: list[tuple[list[AuditEntry], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, entry: AuditEntry) -> None:
        await self.record_many([entry])

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Store ``entries`` in one transaction, with whatever else is recorded meanwhile;
        back once they are stored (or logged, if they cannot be)."""
        if not entries:
            return
        loop = asyncio.get_running_loop()
        stored = loop.create_future()
        self._queued.append((list(entries), stored))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_queued(), name=f"audit {self.source}")
        # A caller cancelled meanwhile leaves its entries to be stored all the same.
        await asyncio.shield(stored)

    async def flush(self) -> None:
        """Once everything recorded so far is stored (at a stop, before the engine closes)."""
        if self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_queued(self) -> None:
        """Store what is queued, one transaction per round, until nothing is left."""
        batch: list[tuple[list[AuditEntry], asyncio.Future[None]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                await self._store(batch)
                for _, stored in batch:
                    if not stored.done():
                        stored.set_result(None)
                batch = []
        except asyncio.CancelledError:  # the loop is going away: say what is not stored
            for entries, stored in [*batch, *self._queued]:
                for entry in entries:
                    dump = entry.model_dump(mode="json")
                    logger.error("audit entry not stored: %s", dump)  # noqa: TRY400 - no error
                if not stored.done():
                    stored.set_result(None)
            self._queued = []
            raise

    async def _store(self, batch: list[tuple[list[AuditEntry], asyncio.Future[None]]]) -> None:
        """Every entry of ``batch`` in one transaction; one by one if that fails (a bad
        entry loses no other), each that still fails logged in full."""
        everything = [entry for entries, _ in batch for entry in entries]
        try:
            await add_entries(self._factory, everything)
        except Exception:
            if len(everything) == 1:
                dump = everything[0].model_dump(mode="json")
                logger.exception("could not record an audit entry: %s", dump)
                return
        else:
            return
        for entry in everything:
            try:
                await add_entries(self._factory, [entry])
            except Exception:
                dump = entry.model_dump(mode="json")
                logger.exception("could not record an audit entry: %s", dump)

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
