"""Test-only models that use EncryptedTextField, installed by tests/settings.py."""
