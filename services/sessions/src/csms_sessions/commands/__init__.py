"""CSMS-initiated commands, version-neutral over REST, translated per station OCPP version."""
