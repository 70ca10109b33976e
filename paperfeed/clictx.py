"""What every CLI command receives: validated settings and a store opened on first use."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .config import Settings
from .store import Store, open_store

__all__ = ["Context", "pass_ctx", "echo_json"]


class Context:
    """Settings plus a store opened on first use (so `settings` works with a bad db path)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(
                self.settings.db,
                busy_timeout=self.settings.busy_timeout,
                pool_size=self.settings.db_pool_size,
            )
        return self._store

    @property
    def progress(self) -> bool:
        return bool(self.settings.progress) and sys.stderr.isatty()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


pass_ctx = click.make_pass_decorator(Context)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))
