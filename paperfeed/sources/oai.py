"""arXiv OAI-PMH (``export.arxiv.org/oai2``) ListRecords / GetRecord pages -> Papers.

Two metadata formats are read: ``arXiv`` (codes, dates and structured names) and the generic
``oai_dc`` (subjects as words, "Last, First" creators, dates without times). Deleted records
(``<header status="deleted">``) yield no Paper: a deletion is news for the harvester, not a
fault in the data, so they are handed over on the page (``OaiPage.deleted``) together with
each record's header datestamp (``OaiPage.datestamps``), which orders corrections.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.etree.ElementTree import Element

from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from .limits import DEFAULT_LIMITS, Limits, category_problem, checked, overlong_why
from .taxonomy import subject_to_category
from .text import arxiv_links, clean, first_doi, join_initials, parse_date
from .xmlsafe import OversizeTagError, ParseError, UnsafeXMLError, iter_elements, local_name, oversize_of, syntax_error

__all__ = ["ResumptionToken", "OaiPage", "DeletedRecord", "parse_oai", "read_oai_page", "page_info", "SOURCE"]

SOURCE = "arxiv-oai"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"

_RECORD = OAI + "record"
_TOKEN = OAI + "resumptionToken"
_ERROR = OAI + "error"


@dataclass(slots=True)
class ResumptionToken:
    """Where the next page starts. An empty ``token`` means the list is complete."""

    token: str
    cursor: int | None = None
    complete_list_size: int | None = None
    expiration_date: str | None = None


@dataclass(slots=True)
class DeletedRecord:
    """A ``<header status="deleted">`` record: the paper was withdrawn (or never existed)."""

    id: str  # base arXiv id (or the header identifier when it is not one)
    datestamp: str | None
    where: str


@dataclass(slots=True)
class OaiPage:
    """Page-level facts a harvester needs besides the records."""

    resumption_token: ResumptionToken | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (code, message)
    deleted: list[DeletedRecord] = field(default_factory=list)
    # Paper id -> the header <datestamp> of its record: when the repository last changed it.
    # A correction (same version, same <updated>) is told apart from a stale copy by it.
    datestamps: dict[str, str] = field(default_factory=dict)

    @property
    def next_token(self) -> str | None:
        """The token to ask for the next page with, or None when this was the last one."""
        rt = self.resumption_token
        return rt.token if rt is not None and rt.token else None


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


def _arxiv_format(md: Element, header_id: str | None, where: str) -> Paper | Rejected:
    # Children are matched by local name: some responses leave <arXiv> in the OAI namespace.
    text: dict[str, str] = {}
    authors: list[str] = []
    for child in md:
        name = local_name(child.tag)
        if name == "authors":
            for a in child:
                parts: dict[str, list[str]] = {"keyname": [], "forenames": [], "suffix": []}
                for p in a:
                    bucket = parts.get(local_name(p.tag))
                    if bucket is not None and p.text and p.text.strip():
                        bucket.append(p.text)
                full = clean(" ".join(parts["forenames"] + parts["keyname"] + parts["suffix"]))
                # arXiv's own parse leaves separators like ":" as authors; they name no one.
                if full and any(ch.isalnum() for ch in full):
                    authors.append(join_initials(full))
        elif child.text is not None and name not in text:
            text[name] = child.text
    raw_id = (text.get("id") or header_id or "").strip()
    if not raw_id:
        return Rejected(where, "record has no <id> and no header identifier")
    parsed = parse_arxiv_id(raw_id)
    if parsed is None:
        return Rejected(where, f"record id {raw_id!r} is not an arXiv id")
    base, version = parsed
    title = clean(text.get("title"))
    if not title:
        return Rejected(where, f"{base}: missing title")
    try:
        created = parse_date(text["created"]) if text.get("created") else None
        updated = parse_date(text["updated"]) if text.get("updated") else None
    except ValueError as exc:
        return Rejected(where, f"{base}: {exc}")
    categories = list(dict.fromkeys((text.get("categories") or "").split()))
    doi = first_doi((text.get("doi") or "").strip())
    return Paper(
        id=base,
        title=title,
        abstract=clean(text.get("abstract")) or "",
        authors=authors,
        categories=categories,
        version=version,
        published=created,
        updated=updated or created,
        doi=doi,
        journal_ref=clean(text.get("journal-ref")) or None,
        comments=clean(text.get("comments")) or None,
        links=arxiv_links(base, version, doi),
        source=SOURCE,
    )


def _creator(s: str) -> str:
    """``"Last, First"`` -> ``"First Last"``; ``"Last, First, Jr."`` -> ``"First Last Jr."``."""
    pieces = [p.strip() for p in s.split(",") if p.strip()]
    if len(pieces) < 2:
        return " ".join(s.split())
    return " ".join([pieces[1], pieces[0], *pieces[2:]])


def _dc_format(md: Element, header_id: str | None, where: str) -> Paper | Rejected:
    values: dict[str, list[str]] = {}
    for child in md:
        if child.text and child.text.strip():
            values.setdefault(local_name(child.tag), []).append(child.text)
    ident: tuple[str, int | None] | None = None
    doi = journal_ref = None
    for v in values.get("identifier", []):
        v = v.strip()
        if ident is None and (p := parse_arxiv_id(v)):
            ident = p
        elif v.lower().startswith("doi:"):
            doi = doi or first_doi(v[4:].strip())
        elif "://" not in v and journal_ref is None:
            journal_ref = clean(v)  # arXiv lists the journal reference as a bare identifier
    if ident is None and header_id:
        ident = parse_arxiv_id(header_id) or (header_id.strip(), None)
    if ident is None or not ident[0]:
        return Rejected(where, "record has no identifier")
    base, version = ident
    title = clean((values.get("title") or [None])[0])
    if not title:
        return Rejected(where, f"{base}: missing title")
    try:
        dates = [parse_date(d) for d in values.get("date", [])]
    except ValueError as exc:
        return Rejected(where, f"{base}: {exc}")
    abstract = comments = None
    for d in values.get("description", []):
        d = clean(d) or ""
        if d.startswith("Comment:"):
            comments = comments or d[len("Comment:") :].strip()
        elif abstract is None:
            abstract = d
    # Subjects become category codes where arXiv's taxonomy knows the name; others stay raw.
    categories = list(
        dict.fromkeys(subject_to_category(s) or clean(s) or "" for s in values.get("subject", []))
    )
    # Words no code stands for are kept only when harmless (no markup, no slashes): they are
    # free text from the server, and an odd one should not cost the paper.
    categories = [c for c in categories if c and category_problem(c) is None]
    is_arxiv = parse_arxiv_id(base) is not None
    return Paper(
        id=base,
        title=title,
        abstract=abstract or "",
        authors=[_creator(c) for c in values.get("creator", [])],
        categories=categories,
        version=version,
        published=dates[0] if dates else None,
        updated=dates[-1] if dates else None,
        doi=doi,
        journal_ref=journal_ref,
        comments=comments,
        links=arxiv_links(base, version, doi)
        if is_arxiv
        else ({"doi": f"https://doi.org/{doi}"} if doi else {}),
        source=SOURCE,
    )


def _header_id(header_id: str) -> str:
    """``oai:arXiv.org:2401.00001`` -> ``2401.00001`` (base id); other text unchanged."""
    parsed = parse_arxiv_id(header_id.strip())
    return parsed[0] if parsed else header_id.strip()


def _record(
    rec: Element, where: str, page: OaiPage | None = None
) -> Paper | Rejected | None:
    header = rec.find(OAI + "header")
    header_id = header.findtext(OAI + "identifier") if header is not None else None
    stamp = header.findtext(OAI + "datestamp") if header is not None else None
    stamp = stamp.strip() if stamp and stamp.strip() else None
    if header is not None and header.get("status") == "deleted":
        if page is not None and header_id and header_id.strip():
            page.deleted.append(DeletedRecord(_header_id(header_id), stamp, where))
        return None
    metadata = rec.find(OAI + "metadata")
    if metadata is None or len(metadata) == 0:
        return Rejected(where, f"record {header_id or '(no identifier)'} has no <metadata>")
    md = metadata[0]
    kind = local_name(md.tag)
    if kind == "arXiv":
        out = _arxiv_format(md, header_id, where)
    elif kind == "dc":
        out = _dc_format(md, header_id, where)
    else:
        return Rejected(where, f"metadata format <{kind}> is not supported (use arXiv or oai_dc)")
    if page is not None and stamp and isinstance(out, Paper):
        page.datestamps[out.id] = max(stamp, page.datestamps.get(out.id, ""))
    return out


def parse_oai(
    stream: BinaryIO | bytes,
    where: str,
    page: OaiPage | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[Paper | Rejected]:
    """Yield one Paper per live record (or a Rejected naming ``where:LINE`` and why).

    An OAI ``<error>`` (other than noRecordsMatch, which only means "nothing new") is yielded
    as a Rejected too. When ``page`` is given it receives the resumptionToken and errors.
    Records over ``limits`` are rejected (see limits.py).
    """
    try:
        for elem, line in iter_elements(stream, (_RECORD, _TOKEN, _ERROR), limits.max_record_bytes):
            here = f"{where}:{line}"
            size = oversize_of(elem)
            if size is not None:
                yield Rejected(here, overlong_why(size, limits).replace("record of", "record of over"))
                continue
            if elem.tag == _RECORD:
                try:
                    rec = _record(elem, here, page)
                    if type(rec) is Paper:
                        rec = checked(rec, here, limits)
                except Exception as exc:  # noqa: BLE001 - odd shapes reject one record, never crash
                    rec = Rejected(here, f"unreadable record: {type(exc).__name__}: {exc}")
                if rec is not None:
                    yield rec
            elif elem.tag == _TOKEN:
                if page is not None:
                    page.resumption_token = ResumptionToken(
                        token=(elem.text or "").strip(),
                        cursor=_int(elem.get("cursor")),
                        complete_list_size=_int(elem.get("completeListSize")),
                        expiration_date=elem.get("expirationDate"),
                    )
            else:
                code = elem.get("code") or "unknown"
                message = clean(elem.text) or ""
                if page is not None:
                    page.errors.append((code, message))
                if code != "noRecordsMatch":
                    yield Rejected(here, f"OAI-PMH error {code}: {message}".rstrip(": "))
    except (UnsafeXMLError, OversizeTagError) as exc:
        yield Rejected(where, str(exc))
    except ParseError as exc:
        line, why = syntax_error(exc)
        yield Rejected(f"{where}:{line}" if line else where, why)


def read_oai_page(
    data: bytes, where: str = "OAI-PMH response"
) -> tuple[list[Paper | Rejected], OaiPage]:
    """One pass over a whole response: its records, resumptionToken and errors."""
    page = OaiPage()
    records = list(parse_oai(data, where, page))
    return records, page


def page_info(data: bytes) -> OaiPage:
    """Only the resumptionToken (text, cursor, completeListSize) and any OAI errors."""
    return read_oai_page(data)[1]
