"""What a new user copies from the README works on a fresh clone: every file an example names
exists in the repository, and what paperfeed writes beside a database is git-ignored."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Commands whose arguments are files to read.
_READS = ("import", "eval beir")


def _commands() -> list[list[str]]:
    """The arguments of every ``paperfeed ...`` line inside a fenced code block."""
    out, inside = [], False
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        line = line.split(" # ", 1)[0].strip()
        if inside and line.startswith("paperfeed "):
            out.append(shlex.split(line)[1:])
    return out


def test_readme_examples_name_only_files_that_exist():
    checked = 0
    for args in _commands():
        cmd = " ".join(args[:2]) if args[:2] == ["eval", "beir"] else args[0]
        if cmd not in _READS:
            continue
        for a in args[len(cmd.split()) :]:
            if a.startswith("-") or a in ("train", "all", "keyword", "hybrid", "semantic"):
                continue
            assert (ROOT / a).exists(), f"README example names {a!r}, which is not in the repository"
            checked += 1
    assert checked >= 5  # the import and eval examples were found


def test_the_index_folder_and_screenshots_are_git_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["paperfeed.db.index/", "data/papers.db.index/tantivy/meta.json", "tests/screenshots/home.png"]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.stdout.split() == paths, proc.stdout + proc.stderr
