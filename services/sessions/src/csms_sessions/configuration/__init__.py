"""Station configuration: 1.6 configuration keys and the 2.x device model (functional block B)."""
