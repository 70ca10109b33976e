"""Rebuild paperfeed/data/sample.jsonl.gz, the bundled sample of real papers.

Sources (all in ../shared/data, provenance in each SOURCE.md): the 77 papers of the seed
listing, the Hugging Face daily_papers capture (2026-06-12), and the arXiv API (Atom) and
OAI-PMH samples. Every record is parsed by paperfeed's own parsers and written in the
``paperfeed`` JSON-lines format, one line per source record (the importer merges records of
the same paper). Seed papers have no arXiv id in the listing, so they get ``seed:NN`` ids.

    .venv/bin/python scripts/build_sample.py
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path

from paperfeed.models import Paper, Rejected
from paperfeed.sources import iter_file

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "paperfeed" / "data" / "sample.jsonl.gz"


def seed_papers() -> list[Paper]:
    out = []
    with open(SHARED / "seed-listing" / "papers.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            d = json.loads(line)
            out.append(Paper(id=f"seed:{i:02d}", title=d["title"], abstract=d["abstract"], source="seed"))
    return out


def main() -> None:
    files = [SHARED / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"]
    files += sorted((SHARED / "arxiv-api-fixtures" / "atom").glob("*.xml"))
    files += sorted((SHARED / "arxiv-api-fixtures" / "oai").glob("*.xml"))
    papers = seed_papers()
    for f in files:
        for rec in iter_file(f):
            if isinstance(rec, Rejected):
                print(f"skipped {rec.where}: {rec.why}")
            else:
                papers.append(rec)
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as out:
        for p in papers:
            d = {k: v for k, v in asdict(p).items() if v not in (None, [], {}, "")}
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"wrote {len(papers)} records to {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
