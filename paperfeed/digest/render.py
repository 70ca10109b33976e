"""Digest mails as HTML (inline CSS, a <style> for dark mode and phones) and plain text.

Paper titles, authors and abstracts are untrusted: the HTML templates are autoescaped, and
the plain-text part has control characters removed (a title cannot add a header or fake a
line of the footer; the text part is a body, never a header). Nothing from a paper reaches
the Subject line.
"""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = [
    "render_html", "render_text", "clean", "short_abstract", "short_authors", "wrap_text",
]

TEMPLATES = Path(__file__).parent / "templates"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\ufffe\uffff]")
_SPACE = re.compile(r"\s+")


def clean(text: str | None) -> str:
    """One line of untrusted text: control characters gone, white space collapsed."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", text or "")).strip()


def short_abstract(text: str | None, limit: int = 320) -> str:
    """The start of an abstract: whole sentences up to ``limit`` characters when they fit,
    else cut at a word, with an ellipsis."""
    s = clean(text)
    if len(s) <= limit:
        return s
    cut = s[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    if end >= limit // 2:
        return cut[: end + 1]
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def short_authors(authors: list[str], keep: int = 5) -> str:
    names = [clean(a) for a in authors if clean(a)]
    if len(names) > keep:
        return ", ".join(names[:keep]) + f" and {len(names) - keep} more"
    return ", ".join(names)


def wrap_text(text: str) -> str:
    return "\n".join(textwrap.wrap(text, width=76, initial_indent="   ", subsequent_indent="   "))


@lru_cache(maxsize=2)
def _env(html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=not html,
        lstrip_blocks=not html,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    return env


def render_html(template: str, **ctx) -> str:
    return _env(True).get_template(template).render(**ctx)


def render_text(template: str, **ctx) -> str:
    return _env(False).get_template(template).render(**ctx)
