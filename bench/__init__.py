"""Benchmarks of the distributed CSMS on real Kafka, Redis and PostgreSQL (see README.md)."""
