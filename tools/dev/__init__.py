"""Helpers for scripts/develop (a local Home Assistant with Arcade Pay); not shipped."""
