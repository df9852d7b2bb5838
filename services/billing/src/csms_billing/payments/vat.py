"""OCPP 2.1 VatNumberValidation: is a driver's VAT number real, and whose is it?

A payment terminal asks before it prints a company receipt. The number must look
like one (two letters of a country, then 2 to 12 letters and digits: the EU VIES
form; spaces, dots and dashes ignored), and a VAT registry must know it:
``VatRegistry`` is the interface, ``HttpVatRegistry`` one over HTTP
(``GET {url}/vat/{number}`` answering ``{"valid": ..., "name": ..., "address1": ...,
"city": ..., "postal_code": ..., "country": ...}``). Without a registry nothing can
be confirmed: the answer is Rejected, saying why, never a guess.
"""

import re
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

_FORM = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,12}$")
_NOISE = re.compile(r"[\s.\-]")


class Company(BaseModel):
    """OCPP 2.1 AddressType of the number's holder."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=50)
    address1: str = Field(max_length=100)
    address2: str | None = Field(default=None, max_length=100)
    city: str = Field(max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(max_length=50)

    def wire(self) -> dict[str, str]:
        found = {
            "name": self.name,
            "address1": self.address1,
            "address2": self.address2,
            "city": self.city,
            "postalCode": self.postal_code,
            "country": self.country,
        }
        return {key: value for key, value in found.items() if value is not None}


class VatRegistry(Protocol):
    async def lookup(self, vat_number: str) -> Company | None:
        """The holder of a valid number; None when the registry does not know it."""
        ...


class HttpVatRegistry:
    def __init__(self, url: str) -> None:
        self._url = url

    async def lookup(self, vat_number: str) -> Company | None:
        async with httpx.AsyncClient(base_url=self._url, timeout=10) as client:
            response = await client.get(f"/vat/{vat_number}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return Company.model_validate(found) if found.get("valid") else None


def normalized(vat_number: str) -> str:
    return _NOISE.sub("", vat_number).upper()


async def validate_vat(
    registry: VatRegistry | None, vat_number: str, evse_id: int | None
) -> dict[str, Any]:
    """The VatNumberValidationResponse payload for ``vat_number``."""
    answer: dict[str, Any] = {"vatNumber": vat_number}
    if evse_id is not None:
        answer["evseId"] = evse_id
    number = normalized(vat_number)
    if not _FORM.match(number):
        return answer | _rejected("InvalidValue", "not a VAT number's form")
    if registry is None:
        return answer | _rejected("Unavailable", "no VAT registry is configured")
    try:
        company = await registry.lookup(number)
    except httpx.HTTPError as exc:
        return answer | _rejected("Unavailable", f"the VAT registry did not answer: {exc!r}"[:500])
    if company is None:
        return answer | _rejected("UnknownNumber", "the VAT registry does not know it")
    return answer | {"status": "Accepted", "company": company.wire()}


def _rejected(code: str, why: str) -> dict[str, Any]:
    return {"status": "Rejected", "statusInfo": {"reasonCode": code, "additionalInfo": why}}
