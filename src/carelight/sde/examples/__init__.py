"""Example dataset definitions for the secure data environment (docs/sde-query.md)."""
