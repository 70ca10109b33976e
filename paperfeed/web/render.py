"""Turning untrusted paper text into HTML: the Jinja2 environment, math and abstract folding.

Titles and abstracts come from the outside world and are never trusted. Every template is
autoescaped; the only HTML we produce from paper text is MathML for ``$...$`` spans, and that
MathML is rebuilt element by element from an allow-list (latex2mathml copies ``\\text{...}``
and ``\\href`` arguments into its output unescaped, so its output cannot be trusted either).
Anything that does not convert cleanly is shown as its escaped source text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from jinja2 import Environment, FileSystemLoader, select_autoescape
from latex2mathml.converter import convert
from markupsafe import Markup, escape

from ..ids import is_arxiv_id

__all__ = [
    "make_env",
    "render_math",
    "split_abstract",
    "safe_url",
    "paper_url",
    "plain",
    "repo_name",
]

TEMPLATES = Path(__file__).parent / "templates"

# $...$ (inline) and $$...$$ (display). An inline span must not start or end with a space and
# is not followed by a digit, so "costs $5 and $10" stays text. \$ is a literal dollar.
_MATH = re.compile(
    r"(?<!\\)\$\$(?P<display>[^$]{1,600}?)\$\$"
    r"|(?<![\\$])\$(?P<inline>[^\s$](?:[^$\n]{0,600}?[^\s$\\])?)\$(?![\d$])"
)

_NS = "{http://www.w3.org/1998/Math/MathML}"
_ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msup msub msubsup mfrac msqrt mroot mover munder "
    "munderover mtable mtr mtd mlabeledtr mstyle mpadded mphantom menclose merror mfenced "
    "mmultiscripts mprescripts none semantics".split()
)
_ATTRIBUTES = frozenset(
    "display mathvariant stretchy fence separator separators lspace rspace minsize maxsize "
    "movablelimits accent accentunder columnalign columnspacing columnlines rowspacing rowalign "
    "rowlines linethickness displaystyle scriptlevel width height depth notation open close "
    "frame largeop form symmetric mathcolor mathbackground align".split()
)
_VALUE = re.compile(r"^[\w#.%+\- ]{0,40}$")
# Characters XML 1.0 forbids; they would make a feed or a MathML fragment unreadable.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def plain(text: str | None) -> str:
    """Text with the control characters XML cannot carry removed (for feeds and <title>)."""
    return _CONTROL.sub("", text or "")


def _rebuild(el: Element, out: list[str]) -> None:
    """Serialise ``el`` keeping only allow-listed MathML; raise ValueError on anything else."""
    tag = el.tag[len(_NS) :] if el.tag.startswith(_NS) else None
    if tag not in _ELEMENTS:
        raise ValueError(f"element {el.tag!r} not allowed")
    attrs = []
    for name, value in el.attrib.items():
        if name in _ATTRIBUTES and _VALUE.match(value):
            attrs.append(f' {name}="{escape(value)}"')
    out.append(f"<{tag}{''.join(attrs)}>")
    if el.text:
        out.append(str(escape(el.text)))
    for child in el:
        _rebuild(child, out)
        if child.tail:
            out.append(str(escape(child.tail)))
    out.append(f"</{tag}>")


@lru_cache(maxsize=4096)
def _mathml(latex: str, display: bool) -> str | None:
    """Safe MathML for one LaTeX span, or None when it cannot be converted."""
    try:
        raw = convert(latex, display="block" if display else "inline")
        out: list[str] = []
        _rebuild(fromstring(raw), out)
    except Exception:  # noqa: BLE001 - any converter failure means "show the source"
        return None
    return "".join(out)


def render_math(text: str | None) -> Markup:
    """Escaped text in which each ``$...$`` span that converts becomes MathML."""
    text = plain(text)
    if "$" not in text:
        return escape(text)
    out: list[str] = []
    pos = 0
    for m in _MATH.finditer(text):
        out.append(str(escape(text[pos : m.start()])))
        display = m.group("display") is not None
        latex = m.group("display") if display else m.group("inline")
        html = _mathml(latex, display)
        out.append(html if html is not None else str(escape(m.group(0))))
        pos = m.end()
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def split_abstract(text: str | None, limit: int = 320) -> tuple[str, str]:
    """(head, tail) of an abstract for a folded view: the head ends at a space near ``limit``
    characters and never inside a math span; tail is empty when the text is short."""
    text = (text or "").strip()
    if len(text) <= limit + 80:  # folding away a line or two helps nobody
        return text, ""
    spans = [m.span() for m in _MATH.finditer(text)]
    cut = text.rfind(" ", 0, limit)
    while cut > 0 and any(a < cut < b for a, b in spans):
        cut = text.rfind(" ", 0, cut)
    if cut <= 0:
        return text, ""
    return text[:cut], text[cut:]


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link (never javascript:, data: ...), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def paper_url(paper_id: str) -> str:
    """This site's page of a paper: ``/papers/`` and the id as one path segment.

    Only an old-style arXiv id keeps its slash (hep-th/9901001); in any other id ``/``,
    ``?``, ``#``, ``%`` and the like are percent-encoded, so an id such as
    ``../../etc/passwd`` cannot make a link that resolves to another path. An id that is
    all dots ("." or "..") would be a dot segment even encoded (browsers decode %2E there):
    it links to a search for the id instead."""
    if "/" in paper_id and is_arxiv_id(paper_id):
        return "/papers/" + quote(paper_id, safe="/")
    if paper_id in (".", ".."):
        return "/search?" + urlencode({"q": f"id:{paper_id}"})
    return "/papers/" + quote(paper_id, safe=":")


def repo_name(url: str) -> str:
    """``https://github.com/owner/repo`` -> ``owner/repo``; other URLs as they are."""
    parts = urlsplit(url)
    path = parts.path.strip("/").removesuffix(".git")
    if parts.netloc.lower() in ("github.com", "www.github.com") and path.count("/") == 1:
        return path
    return url


def authors_short(authors: list[str], keep: int = 6) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + f" and {len(authors) - keep} more"


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["math"] = render_math
    env.filters["plain"] = plain
    env.filters["authors_short"] = authors_short
    env.filters["repo_name"] = repo_name
    env.globals["split_abstract"] = split_abstract
    env.globals["safe_url"] = safe_url
    env.globals["paper_url"] = paper_url
    return env
