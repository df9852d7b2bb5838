"""Table ``sessions.customer_information_part``; the requests are ``report_request`` rows."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class CustomerInformationPart(SQLModel, table=True):
    """One NotifyCustomerInformation part (OCPP 2.0.1 N09: seqNo from 0, tbc on all but the
    last); the request's data is its parts' ``data`` in seqNo order."""

    __tablename__ = "customer_information_part"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    request_id: int = Field(primary_key=True)
    seq_no: int = Field(primary_key=True)
    data: str = Field(max_length=512)
    generated_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
