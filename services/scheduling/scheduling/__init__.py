"""Scheduling: turns sign-ups into programmes (info day, orientation days, bus tours)."""
