"""Notifications: tells schools, pupils and parents what they need to know, by email."""
