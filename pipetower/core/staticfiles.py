"""Static files with content-hashed names, so browsers may keep them for a year.

`collectstatic` (which `pipetower serve` runs) writes `pipetower.3f2a….css`
next to `pipetower.css` and a manifest; pages link the hashed name, and
WhiteNoise serves hashed names with `Cache-Control: max-age=315360000,
public, immutable`. A changed file gets a new name, so nothing stale is ever
used.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage, which falls back to the plain name
    for a file that was never collected (the test suite and `manage.py runserver`
    serve from the apps' folders through the finders), instead of failing the page."""

    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return str(super().stored_name(name))
        except ValueError:
            return name
