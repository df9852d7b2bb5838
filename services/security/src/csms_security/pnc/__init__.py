"""Plug & Charge (ISO 15118 via OCPP 2.0.1 / 2.1): contract certificates, OCSP, trust."""
