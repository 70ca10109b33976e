"""Rebuild paperfeed/data/sample.jsonl.gz, the bundled sample of real papers.

Sources (all in ../shared/data, provenance in each SOURCE.md): the Hugging Face daily_papers
capture (2026-06-12, with HF's own fields: AI summary, keywords, GitHub repository and stars,
project page), and the arXiv API (Atom) and OAI-PMH samples. Every record is parsed by
paperfeed's own parsers and written in the ``paperfeed`` JSON-lines format, one line per
source record (the importer merges records of the same paper).

The 77 papers of the seed listing are left out: the listing gives only titles and abstracts
(no arXiv id, authors or date), so a reader could neither open nor place them, and they would
crowd search results and similar-paper lists (they stay in ../shared/data/seed-listing).

    .venv/bin/python scripts/build_sample.py
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import asdict
from pathlib import Path

from paperfeed.models import Paper, Rejected
from paperfeed.sources import iter_file

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "paperfeed" / "data" / "sample.jsonl.gz"


def main() -> None:
    files = [SHARED / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"]
    files += sorted((SHARED / "arxiv-api-fixtures" / "atom").glob("*.xml"))
    files += sorted((SHARED / "arxiv-api-fixtures" / "oai").glob("*.xml"))
    papers: list[Paper] = []
    for f in files:
        for rec in iter_file(f):
            if isinstance(rec, Rejected):
                print(f"skipped {rec.where}: {rec.why}")
            else:
                papers.append(rec)
    # mtime=0: the same sources give the same bytes, so a rebuild shows up in git only when
    # the papers changed.
    raw = gzip.GzipFile(OUT, "wb", compresslevel=9, mtime=0)
    with io.TextIOWrapper(raw, encoding="utf-8") as out:
        for p in papers:
            d = {k: v for k, v in asdict(p).items() if v not in (None, [], {}, "")}
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"wrote {len(papers)} records to {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
