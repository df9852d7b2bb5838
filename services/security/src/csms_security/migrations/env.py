from csms_core.db import run_migrations_online
from csms_security.certificates import models as certificates
from csms_security.events import models as events
from csms_security.inbox import ProcessedEvent
from csms_security.profiles import models as profiles

# Every table of the service shares SQLModel's metadata.
assert certificates.SigningRequest.metadata is events.SecurityEvent.metadata  # noqa: S101
assert profiles.ProfileUpgrade.metadata is ProcessedEvent.metadata  # noqa: S101
run_migrations_online(ProcessedEvent.metadata)
