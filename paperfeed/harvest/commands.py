"""CLI commands for the harvest feature; `register` adds them to the `paperfeed` group."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(main: click.Group) -> None:
    pass
