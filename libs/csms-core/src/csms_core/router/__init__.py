"""The reply channel: which gateway holds a station, and mailboxes to reach processes."""

from csms_core.router.base import (
    CallAnswer,
    CommandOutcome,
    CommandResult,
    Route,
    Router,
    RouterMessage,
    StationCommand,
)
from csms_core.router.commands import CommandClient, StationOffline

__all__ = [
    "CallAnswer",
    "CommandClient",
    "CommandOutcome",
    "CommandResult",
    "Route",
    "Router",
    "RouterMessage",
    "StationCommand",
    "StationOffline",
]
