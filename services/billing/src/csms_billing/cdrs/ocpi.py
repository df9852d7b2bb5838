"""The OCPI 2.2.1 CDR object (mod_cdrs.asciidoc §CDR Object) as pydantic models.

One deviation, stated: the CSMS has no OCPI Locations module yet, so a CDR's
``cdr_location`` carries what it knows (the site or station as the location,
the EVSE and the connector) and leaves out the address, coordinates and
connector type it does not know, rather than making them up.
"""

from enum import StrEnum

from pydantic import Field

from csms_billing.ocpi import DateTime, Number, OcpiModel, Price
from csms_billing.tariffs.ocpi import Tariff


class AuthMethod(StrEnum):
    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class TokenType(StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class CdrDimensionType(StrEnum):
    ENERGY = "ENERGY"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    RESERVATION_TIME = "RESERVATION_TIME"
    TIME = "TIME"


class CdrToken(OcpiModel):
    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    uid: str = Field(max_length=255)
    type: TokenType
    contract_id: str = Field(max_length=255)


class CdrLocation(OcpiModel):
    id: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=255)
    evse_uid: str = Field(max_length=64)
    evse_id: str = Field(max_length=64)
    connector_id: str = Field(max_length=36)


class CdrDimension(OcpiModel):
    type: CdrDimensionType
    volume: Number


class ChargingPeriod(OcpiModel):
    start_date_time: DateTime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: str | None = Field(default=None, max_length=36)


class SignedValue(OcpiModel):
    nature: str = Field(max_length=32, examples=["Start", "End", "Intermediate"])
    plain_data: str = Field(max_length=5000)
    signed_data: str = Field(max_length=5000)


class SignedData(OcpiModel):
    encoding_method: str = Field(max_length=36, examples=["OCMF"])
    encoding_method_version: int | None = None
    public_key: str | None = Field(default=None, max_length=512)
    signed_values: list[SignedValue] = Field(min_length=1)
    url: str | None = Field(default=None, max_length=512)


class Cdr(OcpiModel):
    """An OCPI 2.2.1 Charge Detail Record."""

    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    id: str = Field(max_length=39)
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: str | None = Field(default=None, max_length=36)
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: str | None = Field(default=None, max_length=36)
    cdr_location: CdrLocation
    meter_id: str | None = Field(default=None, max_length=255)
    currency: str = Field(min_length=3, max_length=3)
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Number
    total_energy_cost: Price | None = None
    total_time: Number
    total_time_cost: Price | None = None
    total_parking_time: Number | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: str | None = Field(default=None, max_length=255)
    invoice_reference_id: str | None = Field(default=None, max_length=39)
    credit: bool | None = None
    credit_reference_id: str | None = Field(default=None, max_length=39)
    home_charging_compensation: bool | None = None
    last_updated: DateTime
