"""Campaigns: one image rolled out to many stations in waves, inside maintenance windows."""
