"""Pipetower: self-hostable server automation."""

__version__ = "0.1.0"
