"""Shared platform code of the CSMS: settings, event envelope, bus, router, database, telemetry."""
