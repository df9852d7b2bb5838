"""The audit trail: every state-changing REST call (refused ones too) and every command sent
to a station, with who, what, which station, when and the outcome; never a secret; served
to admins at GET /api/v1/audit (a site-limited admin sees its sites only) and relayed to
csms.audit as typed events."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from csms_api.app import create_service_app
from csms_api.audit import AuditEntry, AuditLog, AuditRelay
from csms_api.audit.api import router as audit_router
from csms_api.audit.middleware import ANONYMOUS_PER_WINDOW, AnonymousThrottle
from csms_api.auth import AdminDep, Authenticator, AuthSettings, OperatorDep
from csms_api.roles import Role
from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.db import session_factory
from csms_core.events import AuditRecorded
from csms_core.router import (
    CommandClient,
    CommandOutcome,
    CommandResult,
    Route,
    StationCommand,
    fixed,
)
from csms_core.router.memory import InMemoryRouter
from tests.kits.api import bearer_headers, two_site_database

PASSWORD = "a-secret-password-16"
LEFT_BEHIND: list[asyncio.Task[CommandResult]] = []


class Credentials(BaseModel):
    password: str


def _routes(commands: CommandClient, engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.put("/stations/{station_id}")
    async def set_credentials(
        caller: AdminDep, station_id: str, body: Credentials
    ) -> dict[str, str]:
        """Sets a secret: the audit must not keep it."""
        return {"station_id": station_id}

    @router.get("/stations/{station_id}")
    async def read_station(caller: OperatorDep, station_id: str) -> dict[str, str]:
        """A read: not audited."""
        return {"station_id": station_id}

    @router.post("/stations/{station_id}/reset")
    async def reset(caller: OperatorDep, station_id: str) -> dict[str, str]:
        """Sends a command: audited as the caller's, not the service's."""
        result = await commands.call(station_id, fixed("Reset", {"type": "Immediate"}), 5)
        return {"outcome": result.outcome.value}

    @router.post("/stations/{station_id}/reset-and-count")
    async def reset_and_count(caller: OperatorDep, station_id: str) -> dict[str, int]:
        """Sends a command, then counts the command rows stored so far."""
        await commands.call(station_id, fixed("Reset", {"type": "Immediate"}), 5)
        async with session_factory(engine)() as session:
            stored = await session.exec(select(AuditEntry).where(col(AuditEntry.kind) == "command"))
            return {"stored": len(stored.all())}

    @router.post("/stations/{station_id}/reset-later")
    async def reset_later(caller: OperatorDep, station_id: str) -> None:
        """Leaves a task that sends a command after the answer (the test awaits it)."""
        command = commands.call(station_id, fixed("Reset", {"type": "Immediate"}), 5)
        LEFT_BEHIND.append(asyncio.create_task(command))

    @router.post("/boom")
    async def boom(request: Request, caller: OperatorDep) -> None:
        """Fails: audited with the 500 the client got."""
        raise RuntimeError("boom")

    return router


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """CP-A on site-a, CP-B on site-b."""
    async with two_site_database(tmp_path / "csms.db") as engine:
        yield engine


@pytest.fixture
async def router() -> AsyncIterator[InMemoryRouter]:
    """An in-process router with a gateway that holds CP-A and accepts every command."""
    router = InMemoryRouter()
    route = Route(station_id="CP-A", gateway_id="gw-1", connection_id="c-1", ocpp_version="2.0.1")
    await router.register(route, ttl_s=60)
    mailbox = await router.open_mailbox(route.address)

    async def gateway() -> None:
        async for message in mailbox:
            if isinstance(message, StationCommand):
                result = CommandResult(
                    command_id=message.command_id,
                    station_id=message.station_id,
                    action=message.action,
                    outcome=CommandOutcome.RESULT,
                    payload={"status": "Accepted"},
                )
                await router.send(message.reply_to, result)

    task = asyncio.create_task(gateway())
    yield router
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def commands(router: InMemoryRouter, engine: AsyncEngine) -> AsyncIterator[CommandClient]:
    audit = AuditLog(session_factory(engine), "sessions")
    async with CommandClient(router, "sessions", audit=audit) as commands:
        yield commands


@pytest.fixture
def app(engine: AsyncEngine, commands: CommandClient) -> FastAPI:
    return create_service_app(
        "CSMS sessions",
        routers=[_routes(commands, engine), audit_router],
        authenticator=Authenticator(AuthSettings(), session_factory(engine)),
        ready=lambda: True,
    )


def _client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=app, client=("203.0.113.7", 40000), raise_app_exceptions=False
    )
    return httpx.AsyncClient(
        transport=transport, base_url="http://csms/api/v1", headers=headers or {}
    )


async def _trail(app: FastAPI, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    async with _client(app, admin) as client:
        response = await client.get("/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _key_id(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer csms_")[:12]


async def test_a_state_changing_call_is_audited_with_who_what_where_and_outcome(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    async with _client(app, admin) as client:
        assert (await client.put("/stations/CP-A", json={"password": PASSWORD})).status_code == 200
        assert (await client.get("/stations/CP-A")).status_code == 200  # a read: not audited
    [entry] = await _trail(app, admin)
    assert entry["kind"] == "rest"
    assert entry["actor"] == f"api-key:{_key_id(admin)}"
    assert entry["actor_kind"] == "api-key"
    assert entry["action"] == "PUT /api/v1/stations/{station_id}"
    assert entry["path"] == "/api/v1/stations/CP-A"
    assert (entry["station_id"], entry["outcome"]) == ("CP-A", "200")
    # The routes are no service's here (a service's are named after its package).
    assert (entry["source"], entry["client"]) == ("api", "203.0.113.7")
    assert PASSWORD not in str(entry)


async def test_refused_and_failed_calls_are_audited_too(app: FastAPI, engine: AsyncEngine) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    viewer = await bearer_headers(engine, Role.VIEWER)
    operator = await bearer_headers(engine, Role.OPERATOR)
    async with _client(app) as anonymous:
        assert (
            await anonymous.put("/stations/CP-A", json={"password": PASSWORD})
        ).status_code == 401
    async with _client(app, viewer) as client:
        assert (await client.post("/stations/CP-A/reset")).status_code == 403
    async with _client(app, operator) as client:
        assert (await client.post("/boom")).status_code == 500
    trail = await _trail(app, admin)
    assert [(e["actor"], e["outcome"]) for e in trail] == [
        (f"api-key:{_key_id(operator)}", "500"),
        (f"api-key:{_key_id(viewer)}", "403"),
        ("anonymous", "401"),
    ]
    assert trail[2]["actor_kind"] == "anonymous"


async def test_a_command_is_audited_as_the_callers_next_to_the_call(
    app: FastAPI, engine: AsyncEngine, commands: CommandClient
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    operator = await bearer_headers(engine, Role.OPERATOR)
    async with _client(app, operator) as client:
        assert (await client.post("/stations/CP-A/reset")).json() == {"outcome": "result"}
    # A command a service sends on its own is the service's.
    assert (
        await commands.call("CP-A", fixed("TriggerMessage", {"requestedMessage": "Heartbeat"}), 5)
    ).outcome == "result"
    command, rest, reset = await _trail(app, admin)
    assert (rest["kind"], rest["action"]) == ("rest", "POST /api/v1/stations/{station_id}/reset")
    assert (reset["kind"], reset["action"], reset["station_id"]) == ("command", "Reset", "CP-A")
    assert (reset["actor"], reset["outcome"]) == (f"api-key:{_key_id(operator)}", "result")
    assert reset["detail"].startswith("command ")
    assert (command["actor"], command["actor_kind"]) == ("service:sessions", "service")
    assert "Immediate" not in str(reset)  # no payload
    commands_only = await _trail(app, admin, kind="command", station_id="CP-A")
    assert [e["action"] for e in commands_only] == ["TriggerMessage", "Reset"]


async def test_a_commands_entry_is_stored_after_the_answer_with_the_calls(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """No REST answer waits for its audit rows (issue 10, the command path): the command's
    entry is stored with the call's once the answer is out, the command's first."""
    admin = await bearer_headers(engine, Role.ADMIN)
    operator = await bearer_headers(engine, Role.OPERATOR)
    async with _client(app, operator) as client:
        answer = await client.post("/stations/CP-A/reset-and-count")
    assert answer.json() == {"stored": 0}
    rest, command = await _trail(app, admin)  # newest first
    assert (command["kind"], command["action"], command["outcome"]) == (
        "command",
        "Reset",
        "result",
    )
    assert rest["action"] == "POST /api/v1/stations/{station_id}/reset-and-count"
    assert rest["actor"] == command["actor"] == f"api-key:{_key_id(operator)}"


async def test_a_command_sent_after_the_answer_is_still_stored(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    operator = await bearer_headers(engine, Role.OPERATOR)
    async with _client(app, operator) as client:
        assert (await client.post("/stations/CP-A/reset-later")).status_code == 200
    assert (await LEFT_BEHIND.pop()).outcome == "result"
    # Either may be stored first: the REST entry goes once the answer is out, the command's
    # when its task ends, and nothing orders the two.
    entries = await _trail(app, admin)
    assert sorted(entry["kind"] for entry in entries) == ["command", "rest"]
    command, rest = sorted(entries, key=lambda entry: entry["kind"] != "command")
    assert (command["kind"], command["action"]) == ("command", "Reset")
    assert command["actor"] == f"api-key:{_key_id(operator)}"
    assert rest["action"] == "POST /api/v1/stations/{station_id}/reset-later"


async def test_a_command_to_a_station_nobody_holds_is_audited_as_an_attempt(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    operator = await bearer_headers(engine, Role.OPERATOR)
    async with _client(app, operator) as client:
        assert (await client.post("/stations/CP-B/reset")).status_code == 500  # unhandled here
    rest, attempt = await _trail(app, admin, station_id="CP-B")  # newest first
    assert (attempt["kind"], attempt["action"], attempt["outcome"]) == (
        "command",
        "Reset",
        "offline",
    )
    assert (attempt["actor"], attempt["detail"]) == (f"api-key:{_key_id(operator)}", "not sent")
    assert (rest["kind"], rest["outcome"]) == ("rest", "500")


async def test_the_trail_is_for_admins_and_a_site_limited_admin_sees_its_sites(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    async with _client(app, admin) as client:
        for station in ("CP-A", "CP-B"):
            await client.put(f"/stations/{station}", json={"password": PASSWORD})
    site_a_admin = await bearer_headers(engine, Role.ADMIN, sites=["site-a"])
    assert [e["station_id"] for e in await _trail(app, site_a_admin)] == ["CP-A"]
    async with _client(app, await bearer_headers(engine, Role.OPERATOR)) as operator:
        response = await operator.get("/audit")
    assert response.status_code == 403
    async with _client(app, admin) as client:
        bad = await client.get("/audit", params={"limit": 10_000, "offset": 2**70})
    assert bad.status_code == 422


async def test_the_relay_puts_each_entry_on_csms_audit_once(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    async with _client(app, admin) as client:
        await client.put("/stations/CP-A", json={"password": PASSWORD})
        await client.put("/stations/CP-B", json={"password": PASSWORD})
    bus = InMemoryBus()
    relay = AuditRelay(session_factory(engine), bus)
    assert await relay.publish_pending() == 2
    assert await relay.publish_pending() == 0  # published once
    events = [
        topics.AUDIT.parse(record.envelope.to_bytes()) for record in bus.records(topics.AUDIT)
    ]
    assert all(isinstance(event, AuditRecorded) for event in events)
    assert [event.station_id for event in events] == ["CP-A", "CP-B"]
    assert [event.data.action for event in events] == ["PUT /api/v1/stations/{station_id}"] * 2
    trail_ids = {entry["id"] for entry in await _trail(app, admin)}
    assert {event.id for event in events} <= trail_ids
    assert not any(PASSWORD in event.model_dump_json() for event in events)


async def test_a_stranger_cannot_fill_the_trail_with_refused_calls(
    app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine, Role.ADMIN)
    async with _client(app) as anonymous:
        for _ in range(ANONYMOUS_PER_WINDOW + 5):
            assert (await anonymous.post("/stations/CP-A/reset")).status_code == 401
    async with _client(app, admin) as client:
        assert (await client.post("/stations/CP-A/reset")).status_code == 200
    trail = await _trail(app, admin, limit=500, kind="rest")
    assert [e["actor"] for e in trail].count("anonymous") == ANONYMOUS_PER_WINDOW
    assert trail[0]["actor_kind"] == "api-key"  # an authenticated caller is never left out


def test_the_next_refused_call_recorded_says_how_many_were_left_out() -> None:
    throttle = AnonymousThrottle(per_window=2, window_s=60)
    assert [throttle.admit("198.51.100.1", now=t) for t in (0, 1, 2, 3)] == [0, 0, None, None]
    assert throttle.admit("198.51.100.2", now=3) == 0  # another address has its own budget
    assert throttle.admit("198.51.100.1", now=61) == 2


def _transactions(engine: AsyncEngine) -> tuple[list[str], Any]:
    """The commits from now on, and the listener (to remove)."""
    commits: list[str] = []

    def note(*args: Any) -> None:
        commits.append("commit")

    event.listen(engine.sync_engine, "commit", note)
    return commits, note


def _entry(action: str, **fields: Any) -> AuditEntry:
    return AuditEntry(
        kind="rest", actor="service:test", actor_kind="service", action=action, outcome="200",
        source="test", **fields,
    )  # fmt: skip


async def _stored_actions(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        rows = await session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))
        return [entry.action for entry in rows.all()]


async def test_entries_recorded_at_once_share_a_transaction_each_stored_on_return(
    engine: AsyncEngine,
) -> None:
    """A group commit (issue 10, the command path): twenty callers at once, each back only
    once its entry is stored, in one or two transactions (all that were queued before the
    writer ran; or the first caller's, then all that came while it was under way), not
    twenty."""
    audit = AuditLog(session_factory(engine), "test")
    commits, note = _transactions(engine)
    try:
        await asyncio.gather(*(audit.record(_entry(f"call {n}")) for n in range(20)))
    finally:
        event.remove(engine.sync_engine, "commit", note)
    assert sorted(await _stored_actions(engine)) == sorted(f"call {n}" for n in range(20))
    assert len(commits) <= 2


async def test_a_bad_entry_among_others_recorded_at_once_loses_no_other(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(session_factory(engine), "test")
    await audit.record(_entry("first", id="a" * 32))
    duplicate = _entry("duplicate", id="a" * 32)  # the id is unique: this one cannot be stored

    await asyncio.gather(
        audit.record_many([_entry("call 1"), _entry("call 1's command")]),
        audit.record(duplicate),
        audit.record(_entry("call 2")),
    )

    assert sorted(await _stored_actions(engine)) == sorted(
        ["first", "call 1", "call 1's command", "call 2"]
    )
    assert "could not record an audit entry" in caplog.text
    assert '"duplicate"' in caplog.text or "'duplicate'" in caplog.text  # logged in full


async def test_an_entry_whose_caller_was_cancelled_is_stored_and_a_flush_awaits_it(
    engine: AsyncEngine,
) -> None:
    """A caller cancelled while waiting (a client gone, a stop) loses no entry: it is
    stored all the same, and ``flush`` (at a stop) returns once it is."""
    audit = AuditLog(session_factory(engine), "test")
    first = asyncio.create_task(audit.record(_entry("under way")))
    second = asyncio.create_task(audit.record(_entry("cancelled while waiting")))
    await asyncio.sleep(0)  # both queued, the first transaction under way
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second

    await audit.flush()

    assert sorted(await _stored_actions(engine)) == ["cancelled while waiting", "under way"]
    await first
