"""Remote control of a station: start, stop, unlock, transaction status (OCPP 1.6 Core, 2.x F)."""
