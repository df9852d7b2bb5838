"""The ``sessions.id_token`` table and the token types each OCPP version knows."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, enum_column, utc_now

# The type an OCPP 1.6 idTag is stored with: 1.6 has no token types.
ID_TAG = "idTag"
# OCPP 2.0.1 IdTokenEnumType.
TOKEN_TYPES_V201 = frozenset(
    {
        "Central",
        "eMAID",
        "ISO14443",
        "ISO15693",
        "KeyCode",
        "Local",
        "MacAddress",
        "NoAuthorization",
    }
)
# OCPP 2.1 Appendix IdTokenEnumStringType (idToken.type is a free string in the 2.1
# schemas; these are the values the appendix documents on top of 2.0.1's).
TOKEN_TYPES_V21 = TOKEN_TYPES_V201 | {"DirectPayment", "EVCCID", "NEVI", "VIN"}
TOKEN_TYPES = TOKEN_TYPES_V21 | {ID_TAG}


class TokenStatus(StrEnum):
    """A token's status; OCPP answers derive from it (see tokens.service).

    An operator sets Accepted, Blocked, Expired, Invalid or NoCredit; NotAtThisLocation
    is only ever a decision (the token's restrictions exclude the station or EVSE).
    """

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    NO_CREDIT = "NoCredit"
    NOT_AT_THIS_LOCATION = "NotAtThisLocation"


class IdToken(SQLModel, table=True):
    __tablename__ = "id_token"
    __table_args__ = {"schema": SCHEMA}

    id_token: str = Field(primary_key=True, max_length=255)
    # 2.x IdTokenEnumType (ISO14443, eMAID, ...; a free string in 2.1) or "idTag".
    type: str = Field(primary_key=True, max_length=20)
    status: TokenStatus = Field(sa_column=enum_column(TokenStatus))
    expiry_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    group_id: str | None = Field(default=None, max_length=255)
    # Restrictions (None: anywhere): the stations and, in 2.x, the EVSE ids it may charge at.
    allowed_station_ids: list[str] | None = Field(default=None, sa_type=JSON)
    allowed_evse_ids: list[int] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
