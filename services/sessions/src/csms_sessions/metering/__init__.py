"""Meter values: normalised samples of every station's meters and the energy they add up to."""
