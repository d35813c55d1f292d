"""Declarative, tracked benchmarking of attribution methods; see README.md."""
