"""What every REST route of the service shares: dependencies and problem responses."""
