"""2.x customer information (OCPP 2.0.1 N09/N10): what a station keeps about a customer,
reported and/or cleared on request."""
