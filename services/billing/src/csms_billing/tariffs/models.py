"""The ``billing.tariff``, ``billing.tariff_target`` and ``billing.tariff_version`` tables.

A tariff is a name with its targets, time zone and extra taxes; what it costs
is in its versions. A version is valid from ``valid_from`` until ``valid_to``
(open-ended when None) and is never changed once a session was priced with it:
a new price is a new version.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class TariffRecord(SQLModel, table=True):
    __tablename__ = "tariff"
    __table_args__ = {"schema": SCHEMA}

    tariff_id: str = Field(primary_key=True, max_length=36)
    tariff_type: str | None = Field(default=None, max_length=20)
    applies_to: dict[str, Any] = Field(sa_type=JSON)
    time_zone: str = Field(max_length=64)
    taxes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    # A deleted tariff prices no new session; its versions stay for the CDRs that name them.
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class TariffTarget(SQLModel, table=True):
    """One thing a tariff applies to; a target holds one tariff per kind of payment."""

    __tablename__ = "tariff_target"
    __table_args__ = (
        UniqueConstraint("kind", "key", "payment", name="uq_tariff_target"),
        {"schema": SCHEMA},
    )

    target_id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    key: str = Field(max_length=255)
    payment: str = Field(max_length=16)
    tariff_id: str = Field(max_length=36, index=True)


class TariffVersion(SQLModel, table=True):
    __tablename__ = "tariff_version"
    __table_args__ = {"schema": SCHEMA}

    tariff_id: str = Field(primary_key=True, max_length=36)
    version: int = Field(primary_key=True)
    valid_from: datetime = Field(sa_type=UtcDateTime)
    valid_to: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The OCPI 2.2.1 Tariff object as stored (country_code, party_id, last_updated filled in).
    body: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
