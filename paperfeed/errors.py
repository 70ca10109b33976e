"""The one exception hierarchy of paperfeed: catch ``PaperfeedError`` to catch them all.

Bad *records* are not exceptions: importers report them as ``models.Rejected`` and carry on.
Exceptions are for things the caller has to fix before anything can be read.
"""

from __future__ import annotations

__all__ = ["PaperfeedError", "SourceError"]


class PaperfeedError(Exception):
    """Base class for every error paperfeed raises on purpose."""


class SourceError(PaperfeedError):
    """A whole input file cannot be read: missing, a directory, an unknown format, or not the
    format the user forced. The message names the file."""
