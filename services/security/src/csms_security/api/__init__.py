"""What every REST route of the service shares."""
