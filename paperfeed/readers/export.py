"""Everything about a reader, for them to take away: JSON (every row) and BibTeX (the
library, with notes and tags, readable by Zotero, JabRef and Mendeley)."""

from __future__ import annotations

import re

from ..ids import is_arxiv_id
from ..store import Store

__all__ = ["export_json", "export_bibtex"]


def export_json(store: Store, user_id: int) -> dict:
    return store.export_user(user_id)


def _field(text: str) -> str:
    # Unbalanced braces would break the entry; a backslash could start a command. Both are
    # rare in titles and notes, and dropping them is the safe choice for a round trip.
    return " ".join(re.sub(r"[{}\\]", "", text or "").split())


def export_bibtex(store: Store, user_id: int) -> str:
    from bibtexparser.bibdatabase import BibDatabase
    from bibtexparser.bwriter import BibTexWriter

    items = store.library(user_id)
    papers = store.get_papers_by_pk([it.pk for it in items])
    db = BibDatabase()
    used: set[str] = set()
    for it in items:
        sp = papers.get(it.pk)
        if sp is None:
            continue
        p = sp.paper
        key = re.sub(r"[^A-Za-z0-9]+", "_", p.id).strip("_") or f"paper{it.pk}"
        while key in used:
            key += "x"
        used.add(key)
        e = {"ENTRYTYPE": "misc", "ID": key, "title": _field(p.title)}
        if p.authors:
            e["author"] = " and ".join(_field(a) for a in p.authors)
        if p.published:
            e["year"] = p.published[:4]
        if is_arxiv_id(p.id):
            e.update(eprint=p.id, archiveprefix="arXiv", url=f"https://arxiv.org/abs/{p.id}")
            if p.primary_category:
                e["primaryclass"] = p.primary_category
        if p.doi:
            e["doi"] = _field(p.doi)
        if it.note:
            e["note"] = _field(it.note)
        if it.tags:
            e["keywords"] = ", ".join(_field(t) for t in it.tags)
        db.entries.append(e)
    w = BibTexWriter()
    w.indent = "  "
    return w.write(db)
