"""Seeding a library: pasted ids, BibTeX exports (Zotero, Mendeley, JabRef) and Zotero
CSL-JSON. Papers found become saved papers; what could not be matched is listed.

Each reference is reduced to what can identify a paper here: an arXiv id (from an
``eprint`` field, an arXiv URL, a ``arXiv:...`` note or journal line, Mendeley's
``arxivId``), a DOI (arXiv's own 10.48550/arXiv.* DOIs become arXiv ids), else its title.
arXiv ids the store lacks are fetched through the arXiv API client when
``library_fetch_arxiv`` is on; DOIs and titles are matched locally only.

BibTeX is parsed with bibtexparser (1.x). Its parser skips what it cannot read without a
word, so the file is first cut into entries here (by ``@type{`` at the start of a line, with
brace counting) and each entry is parsed on its own: a malformed entry is reported with its
line number and skipped, and the entries around it still land.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import InputError
from ..ids import parse_arxiv_id
from ..store import Store

__all__ = [
    "Ref",
    "ImportResult",
    "refs_from_text",
    "refs_from_bibtex",
    "refs_from_csl_json",
    "refs_from_file",
    "decode_upload",
    "add_to_library",
]

log = logging.getLogger("paperfeed.readers")

MAX_REFS = 5000  # per import: a library, not a mirror of arXiv

_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf)/|arxiv[:\s]\s*|10\.48550/arxiv\.)"
    r"(?P<id>\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)",
    re.IGNORECASE,
)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}]+)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_ENTRY_START = re.compile(r"^[ \t]*@([A-Za-z]+)[ \t]*([{(])", re.MULTILINE)
_FETCH_LOCK = threading.Lock()


@dataclass(slots=True)
class Ref:
    """One reference of an import: where it came from and what may identify it."""

    where: str  # "file:line" or "line N"
    text: str  # how to show it in the "not matched" list
    arxiv_id: str | None = None
    doi: str | None = None
    title: str | None = None


@dataclass(slots=True)
class ImportResult:
    saved: list[str] = field(default_factory=list)  # paper ids newly saved
    already: list[str] = field(default_factory=list)  # already in the library
    fetched: list[str] = field(default_factory=list)  # fetched from arXiv on the way
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (where, what)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (where, why): unreadable
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "saved": self.saved,
            "already": self.already,
            "fetched": self.fetched,
            "unmatched": [{"where": w, "what": t} for w, t in self.unmatched],
            "errors": [{"where": w, "why": y} for w, y in self.errors],
            "notes": self.notes,
        }


# --- reading -----------------------------------------------------------------------------------
def _arxiv_from(text: str | None) -> str | None:
    if not text:
        return None
    parsed = parse_arxiv_id(text.strip())
    if parsed:
        return parsed[0]
    m = _ARXIV_IN_TEXT.search(text)
    if m:
        parsed = parse_arxiv_id(m.group("id"))
        return parsed[0] if parsed else None
    return None


def _clean_doi(text: str | None) -> str | None:
    if not text:
        return None
    t = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", "", text.strip(), flags=re.IGNORECASE)
    m = _DOI.search(t)
    return m.group(1).rstrip(".,;") if m else None


def _ref(where: str, shown: str, arxiv: str | None, doi: str | None, title: str | None) -> Ref:
    if arxiv is None and doi:
        m = _ARXIV_DOI.match(doi)
        if m:
            arxiv = _arxiv_from(m.group(1))
    title = " ".join((title or "").replace("{", "").replace("}", "").split()) or None
    return Ref(where, (title or shown)[:200], arxiv, doi, title)


def refs_from_text(text: str, where: str = "line") -> list[Ref]:
    """Pasted arXiv ids, arXiv URLs or DOIs: one or more per line, separated by spaces or
    commas. Anything that is none of these is listed as not matched."""
    refs: list[Ref] = []
    for n, line in enumerate((text or "").splitlines(), 1):
        for item in re.split(r"[\s,;]+", line.strip()):
            if not item:
                continue
            arxiv = _arxiv_from(item)
            doi = None if arxiv else _clean_doi(item)
            refs.append(_ref(f"{where} {n}", item, arxiv, doi, None))
    return refs


def _entry_chunks(text: str) -> list[tuple[int, str, str]]:
    """(line, type, text) of each ``@type{...}`` entry, cut by brace counting."""
    out = []
    for m in _ENTRY_START.finditer(text):
        kind = m.group(1).lower()
        line = text.count("\n", 0, m.start()) + 1
        if kind in ("comment", "preamble"):
            continue
        close = "}" if m.group(2) == "{" else ")"
        depth, i = 0, m.end() - 1
        end = None
        while i < len(text):
            c = text[i]
            if c == m.group(2) or (c == "{" and close == ")"):
                depth += 1
            elif c == close or (c == "}" and close == ")"):
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
            elif c == "@" and text[i - 1] == "\n" and depth > 0:
                break  # the next entry begins before this one closed
            i += 1
        out.append((line, kind, text[m.start() : end] if end else text[m.start() : i]))
    return out


def refs_from_bibtex(text: str, where: str = "file") -> tuple[list[Ref], list[tuple[str, str]]]:
    """(references, errors) of a BibTeX export; a malformed entry is an error at its line."""
    from bibtexparser.bparser import BibTexParser
    import bibtexparser

    refs: list[Ref] = []
    errors: list[tuple[str, str]] = []
    chunks = _entry_chunks(text)
    if not chunks and text.strip():
        errors.append((where, "no BibTeX entries found (expected lines like @article{key, ...})"))
    for line, kind, chunk in chunks:
        at = f"{where}:{line}"
        if kind == "string":
            continue
        if not chunk.rstrip().endswith(("}", ")")):
            errors.append((at, f"@{kind} entry is not closed (a brace is missing); skipped"))
            continue
        parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
        parser.homogenise_fields = False
        try:
            entries = bibtexparser.loads(chunk, parser=parser).entries
        except Exception as e:  # noqa: BLE001 - pyparsing's many errors: report, skip
            errors.append((at, f"@{kind} entry cannot be read ({type(e).__name__}); skipped"))
            continue
        if not entries:
            errors.append((at, f"@{kind} entry cannot be read (no key or fields); skipped"))
            continue
        e = {k.lower(): v for k, v in entries[0].items()}
        arxiv = None
        if (e.get("archiveprefix", "") + e.get("eprinttype", "")).lower().find("arxiv") >= 0 \
                or re.match(r"^\d{4}\.\d{4,5}", e.get("eprint", "")):  # fmt: skip
            arxiv = _arxiv_from(e.get("eprint"))
        for k in ("arxivid", "url", "note", "journal", "howpublished", "number", "doi"):
            arxiv = arxiv or _arxiv_from(e.get(k))
        doi = _clean_doi(e.get("doi"))
        title = e.get("title")
        if not (arxiv or doi or title):
            errors.append((at, f"entry {e.get('id', '?')!r} has no title, DOI or arXiv id; skipped"))
            continue
        refs.append(_ref(at, title or doi or arxiv or e.get("id", "?"), arxiv, doi, title))
    return refs, errors


def refs_from_csl_json(text: str, where: str = "file") -> tuple[list[Ref], list[tuple[str, str]]]:
    """(references, errors) of a CSL-JSON export (Zotero's "CSL JSON"): a list of items."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"{where}: not valid JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise InputError(f"{where}: a CSL-JSON export is a list of items")
    refs, errors = [], []
    for i, item in enumerate(data, 1):
        at = f"{where}: item {i}"
        if not isinstance(item, dict):
            errors.append((at, "not an object; skipped"))
            continue
        fields = {str(k).lower(): v for k, v in item.items() if isinstance(v, str)}
        arxiv = None
        for k in ("url", "number", "archive_location", "note", "container-title", "doi", "id"):
            arxiv = arxiv or _arxiv_from(fields.get(k))
        doi = _clean_doi(fields.get("doi"))
        title = fields.get("title")
        if not (arxiv or doi or title):
            errors.append((at, "no title, DOI or arXiv id; skipped"))
            continue
        refs.append(_ref(at, title or doi or arxiv, arxiv, doi, title))
    return refs, errors


def decode_upload(data: bytes, where: str) -> str:
    """The text of an uploaded export: UTF-8 (with or without a byte-order mark), else a
    clear InputError naming the first byte that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"{where}:{line}: the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
            f"{e.start}); export it again as UTF-8 (Zotero, Mendeley and JabRef all can)"
        ) from None


def refs_from_file(data: bytes, name: str) -> tuple[list[Ref], list[tuple[str, str]]]:
    """References of an uploaded file: CSL-JSON when it looks like JSON, else BibTeX."""
    text = decode_upload(data, name)
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")) and not stripped.startswith("{@"):
        return refs_from_csl_json(text, name)
    return refs_from_bibtex(text, name)


# --- matching and saving -----------------------------------------------------------------------
def _fetch(settings: Settings, ids: list[str], result: ImportResult) -> list:
    try:
        from ..harvest.arxiv_api import fetch_ids
    except ImportError:  # pragma: no cover - the harvest package ships with paperfeed
        return []
    quick = settings.with_overrides(harvest_max_retries=1, harvest_timeout=15.0, harvest_backoff_cap=2.0)
    try:
        with _FETCH_LOCK:
            return fetch_ids(ids, quick)
    except Exception as e:  # noqa: BLE001 - the network edge: say so and go on locally
        log.warning("arXiv fetch of %d ids failed: %s", len(ids), e)
        result.notes.append(f"arXiv could not be reached ({e}); only papers stored here were matched.")
        return []


def _by_title(store: Store, settings: Settings, title: str, catch_up: int | None) -> str | None:
    from ..search import search
    from ..search.text import title_key
    from ..errors import PaperfeedError

    want = title_key(title)
    if not want:
        return None
    try:
        res = search(store, title, mode="keyword", limit=5, settings=settings, catch_up=catch_up)
    except PaperfeedError:
        return None
    papers = store.get_papers_by_pk([h.pk for h in res.hits if h.pk])
    for h in res.hits:
        sp = papers.get(h.pk)
        if sp is not None and title_key(sp.paper.title) == want:
            return sp.paper.id
    return None


def add_to_library(store: Store, settings: Settings, user_id: int, refs: list[Ref],
                   tags: list[str] | None = None, catch_up: int | None = None) -> ImportResult:  # fmt: skip
    """Save every reference found (in the store, or fetched from arXiv), list the rest.
    Papers saved before are kept as they are (their notes and tags stay). Titles are matched
    through the keyword index; ``catch_up`` (the CLI) first indexes up to that many new
    papers, as `paperfeed search` does (the web app indexes in the background instead)."""
    result = ImportResult()
    if len(refs) > MAX_REFS:
        result.notes.append(f"only the first {MAX_REFS} of {len(refs)} references were read")
        refs = refs[:MAX_REFS]
    missing = sorted({r.arxiv_id for r in refs if r.arxiv_id and store.get_paper(r.arxiv_id) is None})
    if missing and settings.library_fetch_arxiv:
        papers = _fetch(settings, missing, result)
        if papers:
            store.upsert_papers(papers)
            result.fetched = sorted({p.id for p in papers})
    dois = store.ids_by_doi([r.doi for r in refs if r.doi and not r.arxiv_id])
    saved_before = set(store.library_pks(user_id))
    seen: set[str] = set()
    for r in refs:
        pid = None
        if r.arxiv_id and store.get_paper(r.arxiv_id) is not None:
            pid = r.arxiv_id
        elif r.doi and r.doi.lower() in dois:
            pid = dois[r.doi.lower()]
        elif r.title:
            pid = _by_title(store, settings, r.title, catch_up)
        if pid is None:
            result.unmatched.append((r.where, r.text))
            continue
        if pid in seen:
            continue
        seen.add(pid)
        sp = store.get_paper(pid)
        if sp is not None and sp.pk in saved_before:
            result.already.append(pid)
            continue
        store.save_paper(user_id, pid, tags=tags)
        result.saved.append(pid)
    return result
