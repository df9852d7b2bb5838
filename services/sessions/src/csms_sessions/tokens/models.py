"""The ``sessions.id_token`` table."""

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, enum_column, utc_now

# The type an OCPP 1.6 idTag is stored with: 1.6 has no token types.
ID_TAG = "idTag"


class TokenStatus(StrEnum):
    """What an operator may set; OCPP answers derive from it (see tokens.service)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"


class IdToken(SQLModel, table=True):
    __tablename__ = "id_token"
    __table_args__ = {"schema": SCHEMA}

    id_token: str = Field(primary_key=True, max_length=255)
    # 2.x IdTokenEnumType (ISO14443, eMAID, ...; a free string in 2.1) or "idTag".
    type: str = Field(primary_key=True, max_length=20)
    status: TokenStatus = Field(sa_column=enum_column(TokenStatus))
    expiry_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    group_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
