"""``csms.cdrs``: every charge detail record billing issues, credit CDRs included."""

from typing import Literal

from pydantic import Field

from csms_core.envelope import Event
from csms_core.events.data import EventData, JsonObject


class CdrIssuedData(EventData):
    cdr_id: str
    session_id: str
    credit: bool = Field(description="A credit CDR, cancelling the one it references.")
    credit_reference_id: str | None
    cdr: JsonObject = Field(description="The CDR in the OCPI 2.2.1 shape.")


class CdrIssued(Event[CdrIssuedData]):
    """Its id is the CDR's (``cdr.{cdr_id}``): published again, it repeats the id."""

    type: Literal["cdr.issued"] = "cdr.issued"
