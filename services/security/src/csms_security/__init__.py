"""The CSMS security service: the station certificate authority, Plug & Charge, security
events and security profile upgrades (OCPP 2.0.1 / 2.1 blocks A and M, 1.6 security
whitepaper)."""
