from csms_billing.cdrs import models as cdr_models
from csms_billing.costs import california
from csms_billing.inbox import ProcessedEvent
from csms_billing.payments import models as payment_models
from csms_billing.sessions import models as session_models
from csms_billing.tariffs import models as tariff_models
from csms_core.db import run_migrations_online

# Every table of the service shares SQLModel's metadata.
assert tariff_models.TariffRecord.metadata is cdr_models.CdrRecord.metadata  # noqa: S101
assert session_models.BilledSession.metadata is ProcessedEvent.metadata  # noqa: S101
assert payment_models.WebPayment.metadata is ProcessedEvent.metadata  # noqa: S101
assert california.StationPricing.metadata is ProcessedEvent.metadata  # noqa: S101
run_migrations_online(tariff_models.TariffRecord.metadata)
