"""Seeding a library: a realistic Zotero BibTeX export with malformed entries, Zotero
CSL-JSON, pasted ids/URLs/DOIs, the arXiv API for ids not stored (a loopback server replaying
a recorded response), and bad uploads (too large, not UTF-8) that change nothing."""

from __future__ import annotations


import pytest
from fastapi.testclient import TestClient

from paperfeed.store import open_store
from paperfeed.web.app import create_app
from tests.conftest import DATA
from tests.db_support import BACKENDS, private_copy
from tests.readers_support import csrf_of, indexed_db, sign_in
from tests.web_support import build_db, settings_for, shared_cache

BIB = DATA / "readers" / "zotero-export.bib"
CSL = DATA / "readers" / "zotero-export.json"
ATOM_ONE = DATA / "arxiv-api-fixtures" / "atom" / "zoia_id_list_1601.00001.xml"


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, web_cache):
    # Indexed: titles are matched through the keyword index, which web requests never write.
    return indexed_db(tmp_path_factory.mktemp("readers-import") / "papers.db", web_cache)


@pytest.fixture(params=BACKENDS)
def db(request, base_db, tmp_path):
    return private_copy(request, base_db, tmp_path)


@pytest.fixture(scope="module")
def without_base(tmp_path_factory):
    path = tmp_path_factory.mktemp("readers-import-without") / "without.db"
    build_db(path, leave_out=frozenset({"1601.00001"}))
    return path


@pytest.fixture(params=BACKENDS)
def without_db(request, without_base, tmp_path):
    """The sample less 1601.00001: a paper the import must fetch from arXiv."""
    return private_copy(request, without_base, tmp_path)


def upload(c, name: str, data: bytes, **fields):
    return c.post("/library/import", data={"csrf": csrf_of(c), **fields},
                  files={"file": (name, data, "application/octet-stream")})  # fmt: skip


def library_ids(c) -> set[str]:
    return {i["id"] for i in c.get("/api/me/library").json()}


def test_zotero_bibtex_export_saves_matches_and_reports_the_rest(db, web_cache):
    s = settings_for(db, web_cache, PAPERFEED_LIBRARY_FETCH_ARXIV="false")
    with TestClient(create_app(s)) as c:
        sign_in(c, s, "ada@example.org")
        # Saved before, with a note: the import must not lose it.
        c.post("/api/me/library", json={"id": "2606.13515", "note": "keep me"},
               headers={"x-csrf-token": csrf_of(c)})  # fmt: skip
        r = upload(c, "My Library.bib", BIB.read_bytes(), tag="thesis")
        assert r.status_code == 200, r.text
        text = r.text
        assert "4 papers saved, 1 already in your library" in text
        # Matched by arXiv URL+DOI, DOI (a journal article), title alone, old-style eprint.
        assert library_ids(c) == {"2606.13681", "2606.13515", "1601.00001", "2606.07867",
                                  "hep-th/9901001"}  # fmt: skip
        # Not found: a book and a preprint this site lacks; unreadable: three malformed entries.
        assert "The art of computer programming" in text and "My Library.bib:60" in text
        assert "A Preprint This Site Has Not Harvested" in text
        for line in (55, 79, 83):
            assert f"My Library.bib:{line}" in text
        assert "not closed (a brace is missing)" in text
        lib = {i["id"]: i for i in c.get("/api/me/library").json()}
        assert lib["2606.13515"]["note"] == "keep me"
        assert lib["1601.00001"]["tags"] == ["thesis"]


def test_zotero_csl_json_and_pasted_ids(db, web_cache):
    s = settings_for(db, web_cache, PAPERFEED_LIBRARY_FETCH_ARXIV="false")
    with TestClient(create_app(s)) as c:
        sign_in(c, s, "ada@example.org")
        r = upload(c, "export.json", CSL.read_bytes())
        assert r.status_code == 200
        assert library_ids(c) == {"2606.13681", "1601.00001"}
        assert "export.json: item 4" in r.text and "export.json: item 5" in r.text
        pasted = ("https://arxiv.org/abs/2606.12730v1, arXiv:2606.07867\n"
                  "https://doi.org/10.1007/s11005-017-1013-4  hep-th/9901001v2\n"
                  "not-an-id 2607.99999 <script>alert(1)</script>")  # fmt: skip
        r = c.post("/library/import", data={"csrf": csrf_of(c), "ids": pasted,
                                            "category": ["cs.CL", "junk!"]})  # fmt: skip
        assert r.status_code == 200
        assert library_ids(c) >= {"2606.12730", "2606.07867", "1401.2122", "hep-th/9901001"}
        assert "not-an-id" in r.text and "2607.99999" in r.text
        assert "<script>alert(1)" not in r.text and "&lt;script&gt;" in r.text
        assert [f["key"] for f in c.get("/api/me/follows").json()] == ["cs.CL"]


def test_unknown_arxiv_ids_are_fetched_through_the_api_client(without_db, web_cache, httpserver):
    db = without_db
    httpserver.expect_request("/api/query").respond_with_data(
        ATOM_ONE.read_bytes(), content_type="application/atom+xml"
    )
    s = settings_for(db, web_cache, PAPERFEED_ARXIV_API_URL=httpserver.url_for("/api/query"),
                     PAPERFEED_HARVEST_INTERVAL="0")  # fmt: skip
    with TestClient(create_app(s)) as c:
        sign_in(c, s, "ada@example.org")
        r = c.post("/library/import", data={"csrf": csrf_of(c), "ids": "1601.00001v1 2606.13681"})
        assert r.status_code == 200 and "(1 fetched from arXiv)" in r.text
        assert library_ids(c) == {"1601.00001", "2606.13681"}
        ((req, _),) = httpserver.log
        assert req.args["id_list"] == "1601.00001"  # only the one not stored


def test_bad_uploads_change_nothing(db, web_cache):
    s = settings_for(db, web_cache, PAPERFEED_LIBRARY_FETCH_ARXIV="false")
    with TestClient(create_app(s)) as c:
        sign_in(c, s, "ada@example.org")
        upload(c, "first.bib", BIB.read_bytes())
        before = c.get("/api/me/library").json()
        assert len(before) == 5
        big = b"@misc{x, title={" + b"A" * (50 * 1024 * 1024) + b"}}\n"
        r = upload(c, "huge.bib", big)
        assert r.status_code == 413 and "larger than 5 MB" in r.text
        latin1 = "@misc{k, title = {Caf\xe9 na\xefve}}\n".encode("latin-1")
        r = upload(c, "latin1.bib", latin1)
        assert r.status_code == 422 and "latin1.bib:1: the file is not UTF-8" in r.text
        r = upload(c, "junk.bib", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        assert r.status_code == 422
        r = upload(c, "empty.json", b"[not json")
        assert r.status_code == 422 and "not valid JSON" in r.text
        r = upload(c, "words.bib", b"just some words, no entries")
        assert r.status_code == 200 and "no BibTeX entries found" in r.text
        no_csrf = c.post("/library/import", files={"file": ("x.bib", BIB.read_bytes())})
        assert no_csrf.status_code == 403
        assert c.get("/api/me/library").json() == before
    with TestClient(create_app(s)) as anon:
        r = anon.post("/library/import", data={"csrf": csrf_of(anon), "ids": "2606.13681"})
        assert r.status_code == 401


def test_cli_library_add_and_import(db, cli_for, tmp_path):
    cli = cli_for(db)
    env = {"PAPERFEED_LIBRARY_FETCH_ARXIV": "false"}
    cli("user", "add", "ada@example.org", "--name", "Ada", check=True)
    proc, out = cli.json("library", "add", "ada@example.org", "2606.13681",
                         "https://arxiv.org/abs/2606.13515", "9999.99999", env=env)  # fmt: skip
    assert out["saved"] == ["2606.13681", "2606.13515"]
    assert out["unmatched"] == [{"where": "argument 3", "what": "9999.99999"}]
    proc, out = cli.json("library", "import", "ada@example.org", str(BIB), "--tag", "zotero", env=env)
    assert proc.returncode == 0
    assert sorted(out["saved"]) == ["1601.00001", "2606.07867", "hep-th/9901001"]
    assert sorted(out["already"]) == ["2606.13515", "2606.13681"]
    assert [e["where"] for e in out["errors"]] == [f"{BIB}:55", f"{BIB}:79", f"{BIB}:83"]
    bad = tmp_path / "bad.bib"
    bad.write_bytes("@misc{k, title={\xe9}}".encode("latin-1"))
    proc = cli("library", "import", "ada@example.org", str(bad), env=env)
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("library", "import", "nobody@example.org", str(BIB), env=env)
    assert proc.returncode == 2 and "no reader" in proc.stderr
    store = open_store(str(db))
    try:
        assert len(store.library_pks(store.find_user("ada@example.org").id)) == 5
    finally:
        store.close()
