"""Reporting: anonymous participation facts and the region's tables."""
