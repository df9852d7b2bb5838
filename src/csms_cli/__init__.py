"""The ``csms`` command: every component in one process, or one component per process."""
