"""``csms api-keys``: create, list and revoke REST API keys in the database directly
(for the first admin key of a deployment, or when no admin key is at hand), and the
admin key ``csms up`` keeps in its data directory."""

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_api.access import ApiKeyStore, KeyCheck, migrate_access
from csms_api.roles import Role
from csms_core.db import create_engine, session_factory, utc_now

T = TypeVar("T")
ADMIN_KEY_FILE = "admin.key"

app = typer.Typer(help="Create, list and revoke REST API keys.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        envvar="CSMS_DATABASE_URL",
        help="Database URL (default: the SQLite database of `csms up` in --data-dir)",
    ),
]
DataDirOption = Annotated[
    Path, typer.Option(help="The data dir of `csms up` (when no database URL is given)")
]

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_expiry(text: str) -> datetime:
    """``30d``, ``12h``, ``90m`` from now, or an ISO 8601 time with a zone."""
    match = _DURATION.match(text.strip())
    if match:
        return utc_now() + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use 30d, 12h, 90m or an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time zone, e.g. 2026-01-31T00:00:00+00:00")
    if moment <= utc_now():
        raise typer.BadParameter("the expiry is in the past")
    return moment


def _run(
    database_url: str | None, data_dir: Path, work: Callable[[ApiKeyStore], Awaitable[T]]
) -> T:
    url = database_url or f"sqlite+aiosqlite:///{data_dir.resolve() / 'csms.db'}"
    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> T:
        engine = create_engine(url, [ACCESS_SCHEMA])
        try:
            await migrate_access(engine)
            return await work(ApiKeyStore(session_factory(engine)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def create(
    role: Annotated[Role, typer.Option(help="viewer | operator | admin | partner")],
    sites: Annotated[
        str | None, typer.Option(help="Only these sites' stations, comma-separated")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiry: 30d, 12h, 90m or an ISO 8601 time")
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for")] = "",
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = Path("csms-data"),
) -> None:
    """Create a key and print it (once: it is stored only as a hash)."""
    site_ids = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    expires_at = parse_expiry(expires) if expires else None

    async def work(store: ApiKeyStore) -> str:
        key, token = await store.create(
            role, sites=site_ids, expires_at=expires_at, name=name, created_by="cli"
        )
        return f"{token}\n# key id {key.key_id}, role {key.role}"

    typer.echo(_run(database_url, data_dir, work))


@app.command("list")
def list_keys(
    database_url: DatabaseOption = None, data_dir: DataDirOption = Path("csms-data")
) -> None:
    """List keys (never their secrets)."""

    async def work(store: ApiKeyStore) -> list[str]:
        keys, _ = await store.page(limit=500, offset=0)
        return [
            f"{k.key_id}  {k.role:8}  sites={','.join(k.sites) if k.sites is not None else '*'}"
            f"  expires={k.expires_at or '-'}  revoked={k.revoked_at or '-'}"
            f"  last_used={k.last_used_at or '-'}  {k.name}"
            for k in keys
        ]

    for line in _run(database_url, data_dir, work):
        typer.echo(line)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (12 hex digits)")],
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = Path("csms-data"),
) -> None:
    """Revoke a key: it stops working at once."""
    if _run(database_url, data_dir, lambda store: store.revoke(key_id)) is None:
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


async def ensure_admin_key(engine: AsyncEngine, path: Path) -> str:
    """The admin key in ``path``: the one already there if it still works, else a new one
    written there with mode 0600 (``csms up``'s first start, or after a revocation)."""
    await migrate_access(engine)
    store = ApiKeyStore(session_factory(engine))
    kept = _read_key(path)
    if kept is not None and (await store.verify(kept)).check is KeyCheck.VALID:
        return kept
    _, token = await store.create(Role.ADMIN, name="csms up admin key", created_by="csms up")
    _write_key(path, token)
    return token


def _read_key(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _write_key(path: Path, token: str) -> None:
    """Written by its owner only, readable by its owner only (never another mode in between)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
