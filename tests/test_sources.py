"""Parsers in paperfeed.sources, on the real recorded samples in tests/data and on broken input."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from paperfeed.errors import PaperfeedError, SourceError
from paperfeed.models import Paper, Rejected
from paperfeed.sources import FORMATS, detect_format, iter_file
from paperfeed.sources.atom import feed_info, read_atom_page
from paperfeed.sources.oai import page_info, read_oai_page
from paperfeed.sources.text import clean, parse_date
from paperfeed.sources.xmlsafe import REFUSED

DATA = Path(__file__).parent / "data"
SNAPSHOT = DATA / "arxiv-kaggle-snapshot-sample" / "arxiv-metadata-oai-snapshot.head200.jsonl"
ATOM = DATA / "arxiv-api-fixtures" / "atom"
ATOM_2026 = ATOM / "sotawhat_transformer_cs.LG_5entries_2026format.xml"
ATOM_LEGACY = ATOM / "xiv_cs.RO_neural_2entries.xml"
ATOM_ZOIA = ATOM / "zoia_id_list_1601.00001.xml"
ATOM_EMPTY = ATOM / "xiv_empty_result.xml"
OAI = DATA / "arxiv-api-fixtures" / "oai"
OAI_DC = OAI / "atomiklabs_listrecords_oai_dc_cs_resumptionToken.xml"
OAI_HEP_EX = OAI / "hepcrawl_arxiv-physics-hep-ex.xml"
OAI_HEP_TH = OAI / "hepcrawl_arxiv-physics-hep-th.xml"
OAI_SINGLE = OAI / "hepcrawl_arxiv-single.xml"
HF = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"
BEIR = DATA / "beir" / "scifact" / "corpus.jsonl"


def read(path: Path | str, fmt: str | None = None) -> tuple[list[Paper], list[Rejected]]:
    papers: list[Paper] = []
    rejected: list[Rejected] = []
    for rec in iter_file(path, fmt):
        (papers if isinstance(rec, Paper) else rejected).append(rec)
    return papers, rejected


def by_id(papers: list[Paper]) -> dict[str, Paper]:
    return {p.id: p for p in papers}


# --- counts on the real samples -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt", "count"),
    [
        (SNAPSHOT, "arxiv-snapshot", 200),
        (ATOM_2026, "arxiv-atom", 5),
        (ATOM_LEGACY, "arxiv-atom", 2),
        (ATOM_ZOIA, "arxiv-atom", 1),
        (ATOM_EMPTY, "arxiv-atom", 0),
        (OAI_DC, "arxiv-oai", 5),
        (OAI_HEP_EX, "arxiv-oai", 3),
        (OAI_HEP_TH, "arxiv-oai", 3),
        (OAI_SINGLE, "arxiv-oai", 1),
        (HF, "hf-daily", 30),
        (BEIR, "beir", 5),
    ],
)
def test_real_samples_detect_and_count(path: Path, fmt: str, count: int) -> None:
    assert detect_format(path) == fmt
    papers, rejected = read(path)
    assert rejected == []
    assert len(papers) == count
    assert len({p.id for p in papers}) == count
    for p in papers:
        assert p.title and p.title == " ".join(p.title.split())  # wraps collapsed
        assert "\n" not in p.abstract


def test_all_getrecord_samples_read() -> None:
    files = sorted(OAI.glob("hepcrawl_getrecord_sample_arxiv_record*.xml"))
    assert len(files) == 11
    for f in files:
        papers, rejected = read(f)
        assert (len(papers), rejected) == (1, []), f


# --- field by field -------------------------------------------------------------------------


def test_snapshot_fields() -> None:
    papers, _ = read(SNAPSHOT)
    p = by_id(papers)["0704.0001"]
    assert p.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert p.abstract.startswith("A fully differential calculation in perturbative quantum")
    # arXiv's authors_parsed says "C. -P."; the name as written is "C.-P." (also below).
    assert p.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert "J.-N. Fuchs" in by_id(papers)["0704.0027"].authors
    assert "Z.-X. Shen" in by_id(papers)["0704.0093"].authors
    assert not any(". -" in a for q in papers for a in q.authors)
    assert p.categories == ["hep-ph"] and p.primary_category == "hep-ph"
    assert p.version == 2
    assert p.published == "2007-04-02T19:18:42Z"
    assert p.updated == "2007-07-24T20:10:27Z"
    assert p.doi == "10.1103/PhysRevD.76.013009"
    assert p.journal_ref == "Phys.Rev.D76:013009,2007"
    assert p.comments == "37 pages, 15 figures; published version"
    assert p.links == {
        "abs": "https://arxiv.org/abs/0704.0001",
        "pdf": "https://arxiv.org/pdf/0704.0001v2",
        "doi": "https://doi.org/10.1103/PhysRevD.76.013009",
    }
    assert p.source == "arxiv-snapshot"
    assert p.upvotes is None and p.listed_on is None

    five = by_id(papers)["0704.0064"]  # five versions
    assert (five.version, five.published, five.updated) == (
        5,
        "2007-04-01T13:32:15Z",
        "2008-10-24T12:23:58Z",
    )
    assert by_id(papers)["0704.0009"].authors[5] == "Neal J. Evans II"  # suffix kept, last
    assert by_id(papers)["0704.0021"].categories == ["nlin.PS", "physics.chem-ph", "q-bio.MN"]

    # The counts SOURCE.md verified independently.
    assert sum(1 for p in papers if p.doi) == 117
    assert sum(1 for p in papers if p.journal_ref) == 109
    assert sum(1 for p in papers if (p.version or 0) > 1) == 87
    assert max(p.version or 0 for p in papers) == 5
    archives = Counter((p.primary_category or "").split(".")[0] for p in papers)
    assert archives["math"] == 46 and archives["cond-mat"] == 42


def test_atom_2026_format() -> None:
    papers, _ = read(ATOM_2026)
    assert [p.id for p in papers][:2] == ["2606.13677", "2606.13591"]
    p = papers[0]
    assert p.title == "Mana: Dexterous Manipulation of Articulated Tools"
    assert p.authors == ["Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"]
    assert p.categories == ["cs.RO", "cs.AI", "cs.CV", "cs.LG"] and p.primary_category == "cs.RO"
    assert p.version == 1
    # <published> comes after the categories in this format; order must not matter.
    assert p.published == p.updated == "2026-06-11T17:59:49Z"
    assert p.comments == "Project Page: https://zhaohengyin.github.io/mana"
    assert "(<1 minute per tool)" in p.abstract  # &lt; decoded
    assert p.links == {
        "abs": "https://arxiv.org/abs/2606.13677",
        "pdf": "https://arxiv.org/pdf/2606.13677v1",
    }
    assert p.source == "arxiv-api"
    assert papers[2].categories == ["cs.LG", "math-ph"]


def test_atom_legacy_format() -> None:
    papers, _ = read(ATOM_LEGACY)
    p = papers[0]
    assert p.id == "2510.14968" and p.version == 1
    assert p.title == (
        "RDD: Retrieval-Based Demonstration Decomposer for Planner Alignment in Long-Horizon Tasks"
    )
    assert p.categories == ["cs.RO", "cs.AI", "cs.CV", "cs.LG", "cs.SY", "eess.SY"]
    assert p.authors == ["Mingxuan Yan", "Yuping Wang", "Zechun Liu", "Jiachen Li"]
    assert p.comments == (
        "39th Conference on Neural Information Processing Systems (NeurIPS 2025); "
        "Project Website: rdd-neurips.github.io"
    )
    assert p.published == "2025-10-16T17:59:37Z"
    assert papers[1].categories == ["cs.RO"]

    (z,) = read(ATOM_ZOIA)[0]
    assert z.id == "1601.00001"
    assert z.title == (
        "Inelastic effects in molecular transport junctions: The probe technique at high bias"
    )
    assert z.doi == "10.1063/1.4944470"
    assert z.journal_ref == "J. Chem. Phys. 144, 124107 (2016)"
    assert z.links["doi"] == "https://doi.org/10.1063/1.4944470"
    assert z.primary_category == "cond-mat.mes-hall"
    assert z.authors == ["Michael Kilgour", "Dvira Segal"]
    assert z.published == "2015-12-26T21:19:45Z"


def test_atom_feed_info_both_formats() -> None:
    new = feed_info(ATOM_2026.read_bytes())
    assert (new.total_results, new.start_index, new.items_per_page) == (28946, 0, 5)
    records, old = read_atom_page(ATOM_LEGACY.read_bytes())
    assert (old.total_results, old.start_index, old.items_per_page) == (5619, 0, 2)
    assert len(records) == 2
    assert feed_info(ATOM_EMPTY.read_bytes()).total_results == 0


def test_oai_dc_fields_and_resumption_token() -> None:
    records, page = read_oai_page(OAI_DC.read_bytes())
    assert len(records) == 5
    token = page.resumption_token
    assert token is not None
    assert (token.token, token.cursor, token.complete_list_size) == ("6960524|1001", 0, 1162)
    assert page.next_token == "6960524|1001" and page.errors == []
    assert page_info(OAI_DC.read_bytes()).next_token == "6960524|1001"

    p = by_id(read(OAI_DC)[0])["1303.2033"]
    assert p.title == "Extended Fourier analysis of signals"
    assert p.authors == ["Vilnis Liepins"]
    # Subjects mapped to codes, in order; the first is primary.
    assert p.categories == ["cs.DS", "cs.IT", "math.NA"] and p.primary_category == "cs.DS"
    assert (p.published, p.updated) == ("2013-03-08", "2024-01-23")
    assert p.comments == "32 pages, 9 figures"
    assert p.abstract.startswith("This summary of the doctoral thesis")
    assert p.source == "arxiv-oai"
    q = by_id(read(OAI_DC)[0])["2401.14034"]
    assert q.authors[:3] == ["Chuankun Li", "Shuai Li", "Yanbo Gao"]
    assert q.categories == ["cs.CV"]


def test_oai_arxiv_format_fields() -> None:
    papers, _ = read(OAI_HEP_EX)
    p = by_id(papers)["1706.09418"]
    assert p.authors == [
        "Daniel Dercks", "Herbi Dreiner", "Manuel E. Krauss", "Toby Opferkuch", "Annika Reinert",
    ]  # fmt: skip
    assert p.categories == ["hep-ph", "hep-ex"] and p.primary_category == "hep-ph"
    assert (p.published, p.updated) == ("2017-06-28", "2017-11-26")
    assert p.doi == "10.1140/epjc/s10052-017-5414-4"
    assert p.journal_ref == "Eur. Phys. J. C (2017) 77:856"
    assert p.title == "R-Parity Violation at the LHC"
    assert p.version is None  # the arXiv OAI format does not say

    (single,) = read(OAI_SINGLE)[0]
    assert single.categories == ["math.AP", "hep-th", "math-ph", "math.DG", "math.MP", "nlin.SI"]
    assert single.authors == ["A. Sergyeyev"]

    # <arXiv> without its own xmlns (in the OAI namespace), and several DOIs in one field.
    (r0,) = read(OAI / "hepcrawl_getrecord_sample_arxiv_record0.xml")[0]
    assert r0.id == "1601.03238"
    assert r0.authors[:2] == ["Planck Collaboration", "Jieci Wang"]
    assert r0.doi == "10.1103/PhysRevD.93.016005"
    assert r0.updated == r0.published == "2016-01-13"
    # arXiv's ":" pseudo-authors between a collaboration and its members name no one.
    (r4,) = read(OAI / "hepcrawl_getrecord_sample_arxiv_record4.xml")[0]
    assert ":" not in r4.authors and r4.authors[2] == "P. Ade"


def test_hf_daily_fields() -> None:
    papers, _ = read(HF)
    p = papers[0]
    assert p.id == "2606.00467"
    assert p.title.startswith("On the Limits of LLM Adaptability")
    assert p.authors[:3] == ["Etienne Casanova", "Rafal Kocielnik", "R. Michael Alvarez"]
    assert p.published == "2026-05-30T00:00:00Z"
    assert p.listed_on == "2026-06-12"
    assert (p.upvotes, p.num_comments) == (0, 2)
    assert p.links == {
        "abs": "https://arxiv.org/abs/2606.00467",
        "pdf": "https://arxiv.org/pdf/2606.00467",
        "hf": "https://huggingface.co/papers/2606.00467",
    }
    assert p.source == "hf-daily"
    assert papers[1].links["code"] == (
        "https://github.com/psychology-of-AI/Rethinking-Pyschometric-Eval-LLMs"
    )
    assert papers[2].links["project"] == "https://chicychen.github.io/dense-hetero-latent-mas/"
    # SOURCE.md's independent counts.
    assert sum(p.num_comments or 0 for p in papers) == 69
    assert sum(len(p.authors) for p in papers) == 202
    assert max(p.upvotes or 0 for p in papers) == 118
    assert {p.listed_on for p in papers} == {"2026-06-12"}
    assert sum(1 for p in papers if "code" in p.links) == 16


def test_hf_older_schema_and_single_object(tmp_path: Path) -> None:
    old_item = {
        "paper": {
            "id": "2410.18965",
            "authors": [
                {"_id": "a1", "name": "Ada Lovelace", "hidden": False, "status": "admin",
                 "user": {"_id": "u1", "fullname": "Ada L.", "user": "ada"}},
                {"_id": "a2", "hidden": True, "user": {"_id": "u2", "fullname": "Alan Turing"}},
            ],
            "publishedAt": "2024-10-24T17:59:51.000Z",
            "title": "An older\n  daily paper",
            "summary": "Text.",
            "upvotes": 7,
        },
        "publishedAt": "2024-10-25T01:02:03.000Z",
        "title": "An older daily paper",
        "numComments": 1,
    }  # fmt: skip
    arr = tmp_path / "old.json"
    arr.write_text(json.dumps([old_item]))
    (p,) = read(arr)[0]
    assert p.authors == ["Ada Lovelace", "Alan Turing"]
    assert p.title == "An older daily paper"
    assert p.listed_on == "2024-10-25"  # no submittedOnDailyAt: the item's publishedAt
    assert p.published == "2024-10-24T17:59:51Z"
    assert (p.upvotes, p.num_comments) == (7, 1)

    one = tmp_path / "one.json"
    one.write_text(json.dumps(old_item, indent=2))
    assert detect_format(one) == "hf-daily"
    assert [q.id for q in read(one)[0]] == ["2410.18965"]


def test_beir_and_paperfeed(tmp_path: Path) -> None:
    papers, _ = read(BEIR)
    p = papers[0]
    assert p.id == "scifact:4983"
    assert p.title.startswith("Microstructural development of human newborn cerebral")
    assert p.abstract.startswith("Alterations of the architecture of cerebral white matter")
    assert p.source == "beir"

    export = tmp_path / "sample.jsonl"
    rows = [
        {"id": "2606.00467v3", "title": "A  title", "abstract": "Some\ntext", "authors": ["A B"],
         "categories": ["cs.CL", "cs.LG"], "published": "2026-05-30T00:00:00.000Z",
         "upvotes": 12, "listed_on": "2026-06-12", "source": "hf-daily", "future_field": 1},
        {"id": "scifact:1", "title": "Plain"},
    ]  # fmt: skip
    export.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert detect_format(export) == "paperfeed"
    papers, rejected = read(export)
    assert rejected == []
    a, b = papers
    assert (a.id, a.version, a.title, a.abstract) == ("2606.00467", 3, "A title", "Some text")
    assert a.primary_category == "cs.CL" and a.upvotes == 12 and a.listed_on == "2026-06-12"
    assert a.published == "2026-05-30T00:00:00Z" and a.source == "hf-daily"
    assert (b.id, b.source, b.authors) == ("scifact:1", "paperfeed", [])


# --- gzip and detection ---------------------------------------------------------------------


@pytest.mark.parametrize("src", [SNAPSHOT, ATOM_2026, OAI_DC, HF, BEIR])
def test_gzip_is_transparent_whatever_the_name(src: Path, tmp_path: Path) -> None:
    plain_papers, _ = read(src)
    folder = tmp_path / src.parent.name  # beir ids are namespaced by folder name
    folder.mkdir()
    for name in (src.name + ".gz", "no-extension"):
        gz = folder / name
        gz.write_bytes(gzip.compress(src.read_bytes()))
        assert detect_format(gz) == detect_format(src)
        papers, rejected = read(gz)
        assert rejected == []
        assert papers == plain_papers


def test_multi_member_gzip(tmp_path: Path) -> None:
    lines = SNAPSHOT.read_bytes().splitlines(keepends=True)
    gz = tmp_path / "multi.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(lines[:77])) + gzip.compress(b"".join(lines[77:])))
    assert len(read(gz)[0]) == 200


def test_formats_list() -> None:
    assert FORMATS == ("arxiv-snapshot", "arxiv-atom", "arxiv-oai", "hf-daily", "beir", "paperfeed")


def test_unknown_format_raises(tmp_path: Path) -> None:
    for name, body in [
        ("table.csv", "id,title\n1,x\n"),
        ("rss.xml", '<?xml version="1.0"?><rss version="2.0"><channel/></rss>'),
        ("other.jsonl", '{"foo": 1}\n{"foo": 2}\n'),
        ("empty.json", ""),
    ]:
        f = tmp_path / name
        f.write_text(body)
        with pytest.raises(SourceError, match="use --format") as err:
            detect_format(f)
        assert str(f) in str(err.value)
        with pytest.raises(SourceError):
            iter_file(f)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "1", "text": "a claim", "metadata": {}}\n')
    with pytest.raises(SourceError, match="queries"):
        detect_format(queries)


def test_forced_format(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="arxiv-snapshot") as err:
        iter_file(SNAPSHOT, "paperfeed")  # the file plainly is a snapshot
    assert str(SNAPSHOT) in str(err.value)
    with pytest.raises(SourceError, match="unknown format 'csv'"):
        iter_file(SNAPSHOT, "csv")
    assert len(read(SNAPSHOT, "arxiv-snapshot")[0]) == 200
    # An undetectable file is read as the user says; its lines are then judged one by one.
    odd = tmp_path / "odd.txt"
    odd.write_text('garbage first line\n{"_id": "7", "title": "T", "text": "x"}\n')
    papers, rejected = read(odd, "beir")
    assert [p.id for p in papers] == [f"{tmp_path.name.lower()}:7"]  # folder-name namespace
    assert [r.where for r in rejected] == [f"{odd}:1"]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SourceError, match="no such file") as err:
        iter_file(missing)  # raised by the call itself, before iteration
    assert str(missing) in str(err.value)
    with pytest.raises(SourceError, match="directory"):
        iter_file(tmp_path)
    with pytest.raises(SourceError):
        detect_format(missing)
    assert issubclass(SourceError, PaperfeedError)


# --- bad records: reported, and reading goes on ---------------------------------------------


def test_malformed_json_line_among_good_ones(tmp_path: Path) -> None:
    good = SNAPSHOT.read_bytes().splitlines(keepends=True)[:4]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(good[0] + b'{"id": "0704.9999", "title": \n' + b"".join(good[1:]))
    papers, rejected = read(f)
    assert [p.id for p in papers] == ["0704.0001", "0704.0002", "0704.0003", "0704.0004"]
    assert len(rejected) == 1
    assert rejected[0].where == f"{f}:2"
    assert "malformed JSON" in rejected[0].why


def test_snapshot_bad_values_are_rejected_per_line(tmp_path: Path) -> None:
    rec = json.loads(SNAPSHOT.read_bytes().splitlines()[0])
    no_title = dict(rec, title="  ")
    bad_date = dict(rec, versions=[{"version": "v1", "created": "yesterday-ish"}])
    no_id = {k: v for k, v in rec.items() if k != "id"}
    bad_id = dict(rec, id="not-an-id")
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [rec, no_title, bad_date, no_id, bad_id, rec]))
    papers, rejected = read(f)
    assert len(papers) == 2
    assert [r.where for r in rejected] == [f"{f}:{n}" for n in (2, 3, 4, 5)]
    why = [r.why for r in rejected]
    assert "missing title" in why[0]
    assert "unparsable date 'yesterday-ish'" in why[1]
    assert "missing field 'id'" in why[2]
    assert "not an arXiv id" in why[3]


def test_snapshot_fallbacks(tmp_path: Path) -> None:
    rec = {
        "id": "hep-th/9901001",
        "authors": "A. Smith (Univ. X, Y), B. Jones and C. Wu",
        "title": "Old\n  style",
        "abstract": "  x\n",
        "categories": "hep-th  gr-qc",
        "versions": [
            {"version": "v2", "created": "Tue, 5 Jan 1999 10:00:00 GMT"},
            {"version": "v1", "created": "Mon, 4 Jan 1999 09:00:00 GMT"},
        ],
        "update_date": "2008-11-26",
        "doi": "10.1/a 10.1/b",
    }
    f = tmp_path / "old.jsonl"
    f.write_text(json.dumps(rec) + "\n" + json.dumps(dict(rec, id="0704.0002", versions=[])))
    (p, q), rejected = read(f, "arxiv-snapshot")
    assert rejected == []
    assert (p.id, p.title, p.abstract) == ("hep-th/9901001", "Old style", "x")
    assert p.authors == ["A. Smith", "B. Jones", "C. Wu"]  # no authors_parsed: split the text
    assert p.categories == ["hep-th", "gr-qc"]
    assert (p.version, p.published, p.updated) == (
        2,
        "1999-01-04T09:00:00Z",
        "1999-01-05T10:00:00Z",
    )
    assert p.doi == "10.1/a" and p.links["pdf"] == "https://arxiv.org/pdf/hep-th/9901001v2"
    assert (q.version, q.published, q.updated) == (None, None, "2008-11-26")  # update_date


def test_oai_dc_unknown_subject_kept_raw() -> None:
    page = (
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record><header>'
        "<identifier>oai:arXiv.org:2401.00001</identifier></header><metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>T</dc:title><dc:creator>Evans, Neal J., II</dc:creator>"
        "<dc:creator>Plato</dc:creator>"
        "<dc:subject>Statistics - Machine Learning</dc:subject>"
        "<dc:subject>Underwater Basket Weaving</dc:subject>"
        "<dc:date>2024-01-02</dc:date><dc:identifier>doi:10.1/xyz</dc:identifier>"
        "<dc:identifier>J. Irreproducible Results 1 (2024)</dc:identifier>"
        "</oai_dc:dc></metadata></record>"
        '<resumptionToken cursor="1000" completeListSize="1001"/></ListRecords></OAI-PMH>'
    )
    (p,), info = read_oai_page(page.encode())
    assert p.id == "2401.00001"  # from the header: no dc:identifier is an arXiv URL
    assert p.authors == ["Neal J. Evans II", "Plato"]
    assert p.categories == ["stat.ML", "Underwater Basket Weaving"]
    assert p.published == p.updated == "2024-01-02"
    assert p.doi == "10.1/xyz" and p.journal_ref == "J. Irreproducible Results 1 (2024)"
    assert info.resumption_token is not None and info.resumption_token.token == ""
    assert info.next_token is None  # an empty token ends the list


ATOM_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">\n'
)


def _entry(eid: str | None, published: str = "2026-06-11T17:59:49Z") -> str:
    id_line = f"    <id>http://arxiv.org/abs/{eid}</id>\n" if eid else ""
    return (
        "  <entry>\n"
        f"{id_line}"
        f"    <title>Paper {eid}</title>\n"
        f"    <published>{published}</published>\n"
        '    <category term="cs.LG"/>\n'
        "  </entry>\n"
    )


def test_xml_record_missing_id_and_bad_date(tmp_path: Path) -> None:
    f = tmp_path / "feed.xml"
    f.write_text(
        ATOM_HEAD
        + _entry("2606.00001v2")
        + _entry(None)  # starts on line 9
        + _entry("2606.00003v1", published="31/02/2026")  # line 14 (the one above has no id line)
        + _entry("2606.00004v1")
        + "</feed>\n"
    )
    papers, rejected = read(f)
    assert [p.id for p in papers] == ["2606.00001", "2606.00004"]
    assert papers[0].version == 2 and papers[0].links["pdf"] == "https://arxiv.org/pdf/2606.00001v2"
    assert [(r.where, r.why) for r in rejected] == [
        (f"{f}:9", "entry has no <id>"),
        (f"{f}:14", "2606.00003: <published>: unparsable date '31/02/2026'"),
    ]


def test_oai_missing_id_deleted_and_errors(tmp_path: Path) -> None:
    head = '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n<ListRecords>\n'
    live = OAI_HEP_EX.read_text()
    first_record = live[live.index("<record>") : live.index("</record>") + len("</record>")]
    no_id = (
        "<record><header><datestamp>2017-12-14</datestamp></header><metadata>"
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><title>No id here</title></arXiv>'
        "</metadata></record>\n"
    )
    deleted = (
        '<record><header status="deleted"><identifier>oai:arXiv.org:1111.1111</identifier>'
        "</header></record>\n"
    )
    f = tmp_path / "page.xml"
    f.write_text(head + deleted + no_id + first_record + "\n</ListRecords>\n</OAI-PMH>\n")
    papers, rejected = read(f)
    assert [p.id for p in papers] == ["1706.05371"]  # the deleted one is skipped silently
    assert len(rejected) == 1
    assert rejected[0].where == f"{f}:4"
    assert "no <id>" in rejected[0].why

    err = (
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        b'<error code="badResumptionToken">The value of the resumptionToken argument is invalid'
        b"</error></OAI-PMH>"
    )
    records, page = read_oai_page(err)
    assert page.errors == [
        ("badResumptionToken", "The value of the resumptionToken argument is invalid")
    ]
    assert [r.why for r in records] == [
        "OAI-PMH error badResumptionToken: The value of the resumptionToken argument is invalid"
    ]
    none = b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><error code="noRecordsMatch"/></OAI-PMH>'
    records, page = read_oai_page(none)
    assert records == [] and page.errors == [("noRecordsMatch", "")] and page.next_token is None


def test_hf_bad_item_among_good(tmp_path: Path) -> None:
    items = json.loads(HF.read_text())[:3]
    items.insert(1, {"paper": {"id": "not an id", "title": "x"}})
    items.insert(3, {"paper": {"id": "2606.00001", "title": "T", "publishedAt": "soon"}})
    items.insert(4, "a string")
    f = tmp_path / "daily.json"
    f.write_text(json.dumps(items))
    papers, rejected = read(f)
    assert len(papers) == 3
    assert [r.where for r in rejected] == [f"{f}:item 2", f"{f}:item 4", f"{f}:item 5"]
    assert "not an arXiv id" in rejected[0].why
    assert "unparsable date 'soon'" in rejected[1].why

    broken = tmp_path / "broken.json"
    broken.write_text(HF.read_text()[:5000])
    papers, rejected = read(broken)
    assert papers == [] and len(rejected) == 1 and "malformed JSON" in rejected[0].why


# --- files that break -----------------------------------------------------------------------


def test_truncated_gzip_yields_good_records_then_one_rejected(tmp_path: Path) -> None:
    data = gzip.compress(SNAPSHOT.read_bytes())
    cut = tmp_path / "snapshot.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    records = list(iter_file(cut))
    papers = [r for r in records if isinstance(r, Paper)]
    assert 50 < len(papers) < 200
    # Every record before the cut, in order, identical to the unbroken file's.
    assert papers == read(SNAPSHOT)[0][: len(papers)]
    assert isinstance(records[-1], Rejected)
    assert sum(isinstance(r, Rejected) for r in records) == 1
    assert records[-1].where == str(cut)
    assert records[-1].why.startswith("truncated gzip")


def test_xml_syntax_error_midway(tmp_path: Path) -> None:
    text = ATOM_2026.read_text()
    third = text.index("<entry>", text.index("<entry>", text.index("<entry>") + 1) + 1)
    f = tmp_path / "cut.xml"
    f.write_text(text[: third + 40])  # cut inside the third entry
    records = list(iter_file(f))
    assert [r.id for r in records[:-1]] == ["2606.13677", "2606.13591"]  # type: ignore[union-attr]
    last = records[-1]
    assert isinstance(last, Rejected) and last.why.startswith("XML syntax error")
    assert last.where.startswith(f"{f}:")


XXE = (
    ATOM_HEAD.replace(
        "<feed", '<!DOCTYPE feed [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<feed', 1
    )
    + _entry("2606.00001").replace("<title>Paper 2606.00001", "<title>&e;")
    + "</feed>\n"
)

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
    + _entry("2606.00001").replace("<title>Paper 2606.00001", "<title>&lol9;")
    + "</feed>\n"
)


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_entity_payloads_are_refused(payload: str, tmp_path: Path) -> None:
    f = tmp_path / "evil.xml"
    f.write_text(payload)
    assert detect_format(f) == "arxiv-atom"
    records = list(iter_file(f))
    assert records == [Rejected(str(f), REFUSED)]
    assert "refused" in REFUSED and "XXE" in REFUSED
    # The same defence covers in-memory pages (what the harvester will hand over).
    records, _ = read_atom_page(payload.encode())
    assert [r.why for r in records] == [REFUSED]  # type: ignore[union-attr]
    oai = payload.replace(
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">',
    ).replace("</feed>", "</OAI-PMH>")  # noqa: E501
    assert [r.why for r in read_oai_page(oai.encode())[0]] == [REFUSED]  # type: ignore[union-attr]


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("Mon, 2 Apr 2007 19:18:42 GMT", "2007-04-02T19:18:42Z"),
        ("Tue, 24 Jul 2007 20:10:27 +0200", "2007-07-24T18:10:27Z"),
        ("2007-05-23", "2007-05-23"),
        ("2026-05-30T00:00:00.000Z", "2026-05-30T00:00:00Z"),
        ("2017-12-14T13:00:41Z", "2017-12-14T13:00:41Z"),
        ("2020-09-04T00:00:00-04:00", "2020-09-04T04:00:00Z"),
        ("2004-02-29T23:59:59", "2004-02-29T23:59:59Z"),
    ],
)
def test_parse_date(raw: str, iso: str) -> None:
    assert parse_date(raw) == iso


@pytest.mark.parametrize(
    "raw", ["", "yesterday", "2007-13-01", "Mon, 31 Feb 2007 19:18:42 GMT", "2007-05-23T25:00Z"]
)
def test_parse_date_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_date(raw)


def test_clean_matches_split_join() -> None:
    assert clean(None) is None
    assert clean("") == ""
    samples = [
        "  A fully\ndifferential\n  calculation  ",
        "tab\there\r\nand\x0cform",
        "non-breaking\xa0space and\u2009thin é",
        "é  ü\n",
        "   ",
    ]
    for s in samples:
        assert clean(s) == " ".join(s.split())


def test_where_uses_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(SNAPSHOT, tmp_path / "s.jsonl")
    with open(tmp_path / "s.jsonl", "ab") as f:
        f.write(b"{oops\n")
    monkeypatch.chdir(tmp_path)
    _, rejected = read("s.jsonl")
    assert [r.where for r in rejected] == ["s.jsonl:201"]
