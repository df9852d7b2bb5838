"""Shared REST plumbing of the CSMS services (errors as problem+json)."""
