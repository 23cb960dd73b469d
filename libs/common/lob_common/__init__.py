"""Shared building blocks of the LOB services (contracts, config, database, outbox, ops)."""
