"""The one exception hierarchy of paperfeed: catch ``PaperfeedError`` to catch them all.

Bad *records* are not exceptions: importers report them as ``models.Rejected`` and carry on.
Exceptions are for things the caller has to fix before anything can be read.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HarvestError",
    "HarvestOffline",
    "HarvestRefused",
    "HarvestStopped",
    "InputError",
    "NotFoundError",
    "PaperfeedError",
    "SearchError",
    "SourceError",
    "StoreError",
]


class PaperfeedError(Exception):
    """Base class for every error paperfeed raises on purpose."""


class SourceError(PaperfeedError):
    """A whole input file cannot be read: missing, a directory, an unknown format, or not the
    format the user forced. The message names the file."""


class ConfigError(PaperfeedError):
    """A setting has a bad value, or the config file is missing or not valid TOML."""


class StoreError(PaperfeedError):
    """The database cannot be opened or prepared (bad path, not a database)."""


class HarvestError(PaperfeedError):
    """A harvest cannot go on: the server keeps failing, replies with something unexpected, or
    sends a page that cannot be read. Pages already fetched are kept with their checkpoint, so
    running the same command again resumes where it stopped."""


class HarvestRefused(HarvestError):
    """The server refused us (HTTP 403). Retrying would only make a ban longer, so we stop."""


class HarvestOffline(HarvestError):
    """The server's name cannot be resolved (offline, DNS down, a mistyped host). Retrying
    within one harvest would only wait out the backoffs, so it fails at once."""


class HarvestStopped(HarvestError):
    """A harvest was asked to stop (SIGTERM, Ctrl-C) between requests; its checkpoint is kept."""


class InputError(PaperfeedError):
    """A value a user typed is not acceptable (an email address, an arXiv id, a date); the
    message says which and why. The web app answers 422 with it."""


class NotFoundError(PaperfeedError):
    """The thing asked for (a paper, a day) is not in the database. The web app answers 404."""


class SearchError(PaperfeedError):
    """Search indexes cannot be built or read: another `paperfeed index` holds them, their
    folder cannot be written, or a benchmark folder is not in BEIR form."""
