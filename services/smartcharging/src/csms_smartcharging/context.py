"""What a handler of one consumed event gets, and the registries handlers are registered in
where they are defined: ``calls`` (the station CALLs smart charging decides or handles) and
``events`` (the other events it consumes, by model)."""

from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.calls import CallHandlers
from csms_core.envelope import Event
from csms_core.events import InboundCall
from csms_core.handlers import EventHandlers
from csms_smartcharging.settings import SmartChargingSettings

PARTY = "smartcharging"


@dataclass
class ChargingContext:
    """One consumed event in its transaction; ``dirty`` names the reason to re-allocate."""

    session: AsyncSession
    settings: SmartChargingSettings
    event: Event[Any]
    dirty: str | None = None
    connected: str | None = None  # OCPP version of a station that just connected
    site_id: str | None = None  # the site, when the event names it (not its station)

    @property
    def station_id(self) -> str:
        return self.event.station_id

    @property
    def payload(self) -> dict[str, Any]:
        """The OCPP payload of a station CALL (already schema-validated)."""
        data = self.event.data
        return data.payload if isinstance(data, InboundCall) else {}


calls = CallHandlers[ChargingContext](PARTY)
events = EventHandlers[ChargingContext]()


def number(value: Any) -> float | None:
    """A number from a station's payload (they send strings too); None if it is none."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
