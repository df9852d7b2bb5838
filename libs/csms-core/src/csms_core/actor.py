"""Who is acting: the authenticated caller of the REST request being served, so that what
it causes (a command to a station) is audited as theirs, not as the service's."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ACTOR: ContextVar[str | None] = ContextVar("csms_actor", default=None)


def current_actor() -> str | None:
    """``api-key:<key id>`` or ``jwt:<subject>`` while serving a request; else None."""
    return _ACTOR.get()


def set_actor(actor: str) -> None:
    """Record the caller of the request this task serves (``csms_api.auth`` does)."""
    _ACTOR.set(actor)


@contextmanager
def acting() -> Iterator[None]:
    """One request's scope: whoever it authenticates as is forgotten when it ends (an ASGI
    server that serves requests in one task must not carry a caller over)."""
    token = _ACTOR.set(None)
    try:
        yield
    finally:
        _ACTOR.reset(token)
