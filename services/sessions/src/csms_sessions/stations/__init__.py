"""Charging stations: registration, boot, connection state and connector status."""
