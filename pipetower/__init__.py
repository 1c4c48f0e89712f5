"""Pipetower: self-hostable server automation."""

import warnings

__version__ = "0.1.0"

# asyncssh touches cryptography's DSA classes when it is imported, and
# cryptography answers with a deprecation warning per class: five lines in
# every process `pipetower serve` starts, about a key type nobody chose. The
# filter is narrow (that message, from asyncssh's modules); every other
# warning is still shown.
warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"asyncssh\.")
