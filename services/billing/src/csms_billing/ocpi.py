"""Types OCPI 2.2.1 objects share (types.asciidoc): numbers, prices, display texts.

OCPI numbers are JSON numbers; we hold them as ``Decimal`` (no binary rounding in
the cost engine) and write them back as JSON numbers.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# A JSON number held exactly; bounded so that no amount overflows a database column.
Number = Annotated[
    Decimal,
    Field(allow_inf_nan=False, gt=Decimal("-1e12"), lt=Decimal("1e12")),
    PlainSerializer(_json_number, return_type=float, when_used="json"),
]
NonNegative = Annotated[Number, Field(ge=0)]


def utc_text(value: datetime) -> str:
    # OCPI 2.2.1 types.asciidoc DateTime: UTC, "Z"; seconds are enough for a price.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


DateTime = Annotated[AwareDatetime, PlainSerializer(utc_text, return_type=str, when_used="json")]


class OcpiModel(BaseModel):
    """An OCPI object: unknown fields are refused (a typo must not pass for a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(OcpiModel):
    """OCPI Price: a cost excluding VAT and, where VAT applies, including it (negative in a
    credit CDR)."""

    excl_vat: Number
    incl_vat: Number | None = None


class DisplayText(OcpiModel):
    language: str = Field(min_length=2, max_length=2, examples=["en"])
    text: str = Field(max_length=512)
