"""REST plumbing of the firmware service."""
