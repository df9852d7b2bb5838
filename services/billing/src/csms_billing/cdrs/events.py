"""``csms.cdrs``: every CDR billing issues, credit CDRs included (docs/asyncapi.yaml)."""

from csms_billing.cdrs.models import CdrRecord
from csms_core.events import CdrIssued, CdrIssuedData

SOURCE = "csms/billing"


def cdr_event(record: CdrRecord) -> CdrIssued:
    """The event of a CDR; its id is the CDR's, so publishing it again repeats the id."""
    return CdrIssued(
        id=f"cdr.{record.cdr_id}",
        source=SOURCE,
        station_id=record.station_id,
        data=CdrIssuedData(
            cdr_id=record.cdr_id,
            session_id=record.session_id,
            credit=record.credit,
            credit_reference_id=record.credit_reference_id,
            cdr=record.body,
        ),
    )
