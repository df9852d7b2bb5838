"""Charging profiles on the wire, per OCPP version, and sending them without storms."""
