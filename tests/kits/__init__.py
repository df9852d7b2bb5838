"""Test kits: harnesses that run one service on the embedded bus and router and play the
stations and gateways around it, built on the typed models the services use."""
