"""Station password rotation (OCPP 2.0.1 A01/A02; 1.6 security whitepaper, AuthorizationKey).

The new password is staged in the station's identity before it is sent: the old one and
the new one are both valid until the station connects with the new one, then only the new
one (the gateway promotes it at the handshake). If the station does not take it, the
staged password is discarded and the old one stays the only one. A station that had no
password gets the new one as its only one once it takes it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from csms_core.identity import IdentityStore
from csms_ocpp import OcppVersion

# Answers after which the station holds the value we set (1.6 §5.3, 2.0.1 B05).
TAKEN = frozenset({"Accepted", "RebootRequired"})


@dataclass
class Rotation:
    """Set ``taken`` once the station accepted the new password."""

    taken: bool = False


@asynccontextmanager
async def rotating(
    identities: IdentityStore, station_id: str, password: str | None
) -> AsyncIterator[Rotation]:
    """Stage ``password`` (None: nothing to rotate) for the block that sends it."""
    rotation = Rotation()
    if password is None:
        yield rotation
        return
    known = await identities.get(station_id)
    had_password = known is not None and known.password_hash is not None
    staged = await identities.stage_password(station_id, password) if had_password else None
    try:
        yield rotation
    finally:
        if staged is not None and not rotation.taken:
            await identities.discard_pending_password(station_id, staged)
        elif staged is None and rotation.taken:
            await identities.save(station_id, password=password)


def password_change(version: OcppVersion, password: str) -> tuple[str, dict[str, object]]:
    """The call that gives the station its new password."""
    if not version.is_2x:
        return "ChangeConfiguration", {"key": "AuthorizationKey", "value": password}
    item = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": password,
    }
    return "SetVariables", {"setVariableData": [item]}
