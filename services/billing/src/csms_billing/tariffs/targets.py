"""What a tariff applies to, and which tariff a session gets.

A tariff applies by default, to sites, to stations, to single EVSEs, or to the
drivers of token groups (a driver's tariff). A session is priced by the most
specific tariff in force at its start: token group, then EVSE, station, site,
default. Within one target an ``AD_HOC_PAYMENT`` tariff prices ad-hoc payments
(a payment terminal, a web payment) and an untyped or ``REGULAR`` one the
rest, so a target holds at most one of each kind.
"""

from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from csms_billing.tariffs.ocpi import TariffType


class TargetKind(StrEnum):
    """In the order a session looks for its tariff (most specific first)."""

    TOKEN_GROUP = "token_group"  # noqa: S105 - a kind of target, not a secret
    EVSE = "evse"
    STATION = "station"
    SITE = "site"
    DEFAULT = "default"


class EvseRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: str = Field(min_length=1, max_length=48)
    evse_id: int = Field(ge=1)


_Names = list[str]


class AppliesTo(BaseModel):
    """Exactly one of ``default``, ``site_ids``, ``station_ids``, ``evses``, ``token_group_ids``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"default": True}, {"station_ids": ["CP-1", "CP-2"]}]},
    )

    default: Literal[True] | None = None
    site_ids: _Names | None = Field(default=None, min_length=1, max_length=1000)
    station_ids: _Names | None = Field(default=None, min_length=1, max_length=1000)
    evses: list[EvseRef] | None = Field(default=None, min_length=1, max_length=1000)
    token_group_ids: _Names | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of default, site_ids, station_ids, evses, token_group_ids"
            )
        names = self.site_ids or self.station_ids or self.token_group_ids or []
        if any(not n or len(n) > 255 for n in names):
            raise ValueError("ids are 1 to 255 characters")
        return self

    def keys(self) -> list[tuple[TargetKind, str]]:
        """(kind, key) of every target; an EVSE's key is ``station_id/evse_id``."""
        if self.default:
            return [(TargetKind.DEFAULT, "")]
        if self.evses is not None:
            return [(TargetKind.EVSE, evse_key(e.station_id, e.evse_id)) for e in self.evses]
        kind, names = next(
            (kind, names)
            for kind, names in (
                (TargetKind.SITE, self.site_ids),
                (TargetKind.STATION, self.station_ids),
                (TargetKind.TOKEN_GROUP, self.token_group_ids),
            )
            if names is not None
        )
        return [(kind, name) for name in dict.fromkeys(names)]


def evse_key(station_id: str, evse_id: int) -> str:
    return f"{station_id}/{evse_id}"


def payment_kind(tariff_type: TariffType | None) -> str:
    """Which kind of payment a tariff prices: one of each per target."""
    return "ad_hoc" if tariff_type is TariffType.AD_HOC_PAYMENT else "regular"
