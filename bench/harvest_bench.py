"""Harvest cost per OAI-PMH page, apart from the network and the politeness wait.

arXiv sends ListRecords pages of up to 1000 records and asks for 3 s between requests, so a
harvest is only as slow as the spacing if parsing a page and storing it (papers and the
checkpoint, one transaction) takes well under 3 s. This builds pages of --per-page records
from the 6 real arXiv-format records in tests/data (ids renumbered, everything else kept),
serves them through httpx's in-memory transport (the client's injectable network edge) with
harvest_interval 0, and harvests --pages pages into a fresh SQLite file. Prints the median
seconds per page over --runs runs, and records per second.

    python bench/harvest_bench.py --pages 20 --per-page 1000 --runs 3
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paperfeed.config import load_settings  # noqa: E402
from paperfeed.harvest.http import PoliteClient  # noqa: E402
from paperfeed.harvest.oai import harvest_arxiv  # noqa: E402
from paperfeed.store import open_store  # noqa: E402

OAI = ROOT / "tests" / "data" / "arxiv-api-fixtures" / "oai"
SOURCES = [OAI / "hepcrawl_arxiv-physics-hep-ex.xml", OAI / "hepcrawl_arxiv-physics-hep-th.xml"]
_RECORD = re.compile(r"<record>.*?</record>", re.S)


def build_pages(pages: int, per_page: int) -> list[bytes]:
    texts = [p.read_text(encoding="utf-8") for p in SOURCES]
    records = [r for t in texts for r in _RECORD.findall(t)]
    head = texts[0][: texts[0].index("<record>")]
    tail = "</ListRecords>\n</OAI-PMH>\n"
    total = pages * per_page
    out = []
    for p in range(pages):
        chunk = []
        for k in range(per_page):
            n = p * per_page + k
            rec = records[n % len(records)]
            old = re.search(r"<id>([^<]+)</id>", rec).group(1)
            new = f"{2401 + n // 90000:04d}.{n % 90000 + 10000:05d}"
            chunk.append(rec.replace(old, new))
        attrs = f'cursor="{p * per_page}" completeListSize="{total}"'
        token = (
            f"<resumptionToken {attrs}>bench|{p + 1}</resumptionToken>"
            if p < pages - 1
            else f"<resumptionToken {attrs}/>"
        )
        out.append((head + "\n".join(chunk) + "\n" + token + "\n" + tail).encode())
    return out


def run_once(pages: list[bytes]) -> float:
    def handler(request: httpx.Request) -> httpx.Response:
        tok = request.url.params.get("resumptionToken")
        i = 0 if tok is None else int(tok.split("|")[1])
        return httpx.Response(200, content=pages[i])

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            env={
                "PAPERFEED_DB": f"{tmp}/bench.db",
                "PAPERFEED_HARVEST_INTERVAL": "0",
                "PAPERFEED_ARXIV_OAI_URL": "http://oai.bench/oai",
            }
        )
        store = open_store(settings.db)
        client = PoliteClient(settings, transport=httpx.MockTransport(handler))
        t0 = time.perf_counter()
        report = harvest_arxiv(
            store, settings, "physics", "2024-01-01", "2024-01-02", "arXiv", client=client
        )
        elapsed = time.perf_counter() - t0
        assert report.complete and report.pages == len(pages), report.summary()
        client.close()
        store.close()
    return elapsed / len(pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--per-page", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    pages = build_pages(a.pages, a.per_page)
    per_page = [run_once(pages) for _ in range(a.runs)]
    med = statistics.median(per_page)
    print(
        f"harvest: {a.pages} pages x {a.per_page} records, {a.runs} runs: "
        f"median {med:.3f} s per page (parse + store + checkpoint), "
        f"{a.per_page / med:,.0f} records/s; runs {', '.join(f'{x:.3f}' for x in per_page)}"
    )


if __name__ == "__main__":
    main()
