"""Reservations of a station, EVSE or connector for a driver (OCPP 1.6 Reservation; 2.0.1 H01-H04).

Other domains mark a reservation used when a transaction starts with it:
``reservations.service.mark_reservation_used(session, station_id, reservation_id)``.
"""
