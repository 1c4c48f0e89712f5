"""Google sign-in: allauth's Google provider with the ID token always verified.

See provider.py for why, and docs/security.md for setting it up.
"""
