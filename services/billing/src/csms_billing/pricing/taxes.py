"""Taxes on a price: OCPI's one VAT per price component, and stacked taxes on top.

OCPI 2.2.1 gives each price component one ``vat`` percentage, or none ("no VAT
is applicable", which is not 0 %). Some markets levy several taxes, some on top
of others; OCPP 2.1 models them as ``TaxRateType`` with a ``stack`` level
(stack 0 on the net price, stack 1 on the net price plus stack 0, ...). A
tariff may add such taxes (``taxes`` next to the OCPI object); the VAT of a
component is a stack-0 tax named "VAT".
"""

from collections.abc import Sequence
from decimal import Decimal
from itertools import groupby

from pydantic import BaseModel, ConfigDict, Field

from csms_billing.tariffs.ocpi import Percentage, TariffDimensionType

HUNDRED = Decimal(100)


class TaxRate(BaseModel):
    """A tax in percent at a stack level, on the dimensions named (all when absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=20, examples=["State"])
    tax: Percentage
    stack: int = Field(default=0, ge=0, le=9)
    dimensions: list[TariffDimensionType] | None = Field(
        default=None, description="the dimensions taxed; all when absent"
    )


def component_taxes(
    vat: Decimal | None, dimension: TariffDimensionType, extra: Sequence[TaxRate]
) -> tuple[TaxRate, ...]:
    """The taxes on one price component: its VAT (if any) and the extra taxes that apply."""
    own = () if vat is None else (TaxRate(type="VAT", tax=vat, stack=0),)
    applying = tuple(t for t in extra if t.dimensions is None or dimension in t.dimensions)
    return own + applying


def tax_factor(taxes: Sequence[TaxRate]) -> Decimal:
    """What a net amount is multiplied by to include ``taxes`` (1 without any)."""
    factor = Decimal(1)
    for _, level in groupby(sorted(taxes, key=lambda t: t.stack), key=lambda t: t.stack):
        factor *= 1 + sum((t.tax for t in level), Decimal(0)) / HUNDRED
    return factor
