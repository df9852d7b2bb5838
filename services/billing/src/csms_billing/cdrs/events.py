"""``csms.cdrs``: every CDR billing issues, credit CDRs included (docs/asyncapi.yaml)."""

from csms_billing.cdrs.models import CdrRecord
from csms_core.envelope import Envelope

SOURCE = "csms/billing"
CDR_ISSUED = "cdr.issued"


def cdr_event(record: CdrRecord) -> Envelope:
    """The event of a CDR; its id is the CDR's, so publishing it again repeats the id."""
    return Envelope(
        id=f"cdr.{record.cdr_id}",
        type=CDR_ISSUED,
        source=SOURCE,
        station_id=record.station_id,
        data={
            "cdr_id": record.cdr_id,
            "session_id": record.session_id,
            "credit": record.credit,
            "credit_reference_id": record.credit_reference_id,
            "cdr": record.body,
        },
    )
