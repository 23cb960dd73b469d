"""The `lob` operator command."""
