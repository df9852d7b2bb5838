"""Local authorization lists (OCPP 1.6 Local Auth List Management; 2.0.1 D01-D04).

Per station we keep the list we want it to hold (entries with the idTagInfo /
idTokenInfo they carry) and what it confirmed (``synced`` entries and
``station_version``); ``sync`` sends the difference.
"""
