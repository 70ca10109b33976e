"""Helpers shared by the search tests."""

from __future__ import annotations

from pathlib import Path


def model_cache_dir(tmp_path_factory) -> Path:
    """One model cache per test session, shared by the search test modules, so the bundled
    model's ONNX export is built once."""
    d = tmp_path_factory.getbasetemp() / "model-cache"
    d.mkdir(exist_ok=True)
    return d
