from csms_core.db import run_migrations_online
from csms_smartcharging.charging import models as charging_models
from csms_smartcharging.topology import models as topology_models

# Every table of the service shares SQLModel's metadata.
assert charging_models.ChargingSession.metadata is topology_models.Site.metadata  # noqa: S101
run_migrations_online(topology_models.Site.metadata)
