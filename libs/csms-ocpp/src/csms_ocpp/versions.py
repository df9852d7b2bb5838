"""The OCPP versions the CSMS speaks, named by their WebSocket subprotocol."""

from enum import StrEnum


class OcppVersion(StrEnum):
    """An OCPP-J version, valued as its WebSocket subprotocol token."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"
    V21 = "ocpp2.1"

    @property
    def number(self) -> str:
        """The bare version number, e.g. ``2.0.1`` (read several times per station frame)."""
        return _NUMBERS[self]

    @property
    def is_2x(self) -> bool:
        return self is not OcppVersion.V16

    @classmethod
    def from_number(cls, number: str) -> "OcppVersion":
        """Parse ``1.6`` / ``2.0.1`` / ``2.1`` (or the subprotocol token itself)."""
        return cls(number if number.startswith("ocpp") else f"ocpp{number}")


_NUMBERS = {version: version.value.removeprefix("ocpp") for version in OcppVersion}

# Newest first: when a station offers several, we pick the newest we support.
PREFERENCE: tuple[OcppVersion, ...] = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


def negotiate(offered: list[str]) -> OcppVersion | None:
    """Choose the newest supported subprotocol among those the station offered."""
    wanted = {token.strip().lower() for token in offered}
    return next((version for version in PREFERENCE if version.value in wanted), None)
