"""The reply channel: which gateway holds a station, and mailboxes to reach processes."""

from csms_core.router.base import (
    CallAnswer,
    CloseConnection,
    CommandOutcome,
    CommandResult,
    Route,
    Router,
    RouterMessage,
    StationCommand,
)
from csms_core.router.commands import (
    Build,
    CommandAudit,
    CommandClient,
    InvalidCommand,
    Reconnected,
    StationOffline,
    fixed,
    planned,
)

__all__ = [
    "Build",
    "CallAnswer",
    "CloseConnection",
    "CommandAudit",
    "CommandClient",
    "CommandOutcome",
    "CommandResult",
    "InvalidCommand",
    "Reconnected",
    "Route",
    "Router",
    "RouterMessage",
    "StationCommand",
    "StationOffline",
    "fixed",
    "planned",
]
