"""The ``billing.cdr`` table: every charge detail record ever issued, never changed.

A CDR is an invoice line (OCPI mod_cdrs: "cannot be changed or replaced once
sent"). When late data changes a session's cost, the CDR standing for it is
credited (a credit CDR with the negated totals) and a corrected one issued; the
old one stays, pointing at its credit.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class CdrRecord(SQLModel, table=True):
    __tablename__ = "cdr"
    __table_args__ = (
        Index("ix_billing_cdr_last_updated", "last_updated", "cdr_id"),
        Index("ix_billing_cdr_station", "station_id", "last_updated"),
        Index("ix_billing_cdr_token", "id_token", "last_updated"),
        Index("ix_billing_cdr_site", "site_id", "last_updated"),
        {"schema": SCHEMA},
    )

    cdr_id: str = Field(primary_key=True, max_length=39)
    session_id: str = Field(max_length=36, index=True)
    station_id: str = Field(max_length=48)
    site_id: str | None = Field(default=None, max_length=64)
    id_token: str | None = Field(default=None, max_length=255)
    credit: bool = False
    credit_reference_id: str | None = Field(default=None, max_length=39)
    # The credit CDR that cancelled this one, once late data corrected the session.
    credited_by: str | None = Field(default=None, max_length=39)
    start_date_time: datetime = Field(sa_type=UtcDateTime)
    end_date_time: datetime = Field(sa_type=UtcDateTime)
    last_updated: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    # The OCPI 2.2.1 CDR object as issued.
    body: dict[str, Any] = Field(sa_type=JSON)
