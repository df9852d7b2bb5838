"""The firmware service's view of stations: what they run, where they are, whether online."""
