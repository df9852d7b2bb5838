"""2.x monitoring (OCPP 2.0.1 N02-N08): the monitors a station holds, its monitoring base and
level, and the events its monitors raise (NotifyEvent)."""
