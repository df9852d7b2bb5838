"""Charging sessions: one version-neutral model fed by 1.6 Start/StopTransaction and MeterValues
and 2.x TransactionEvent, its domain events on ``csms.sessions`` and its REST routes."""
