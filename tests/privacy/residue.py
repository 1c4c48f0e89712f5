"""The residue scanner lives in `pipetower.privacy.residue` (the operator's tool too)."""

from pipetower.privacy.residue import scan_cache, scan_database, scan_files, scan_mail

__all__ = ["scan_cache", "scan_database", "scan_files", "scan_mail"]
