"""The `paperfeed` command end to end: import of every real sample format, show, stats,
settings, bad input handling and exit codes, and documented commands."""

from __future__ import annotations

import gzip
import re
import json

import click
import pytest

from paperfeed.cli import main
from tests.conftest import DATA

SNAPSHOT = DATA / "arxiv-kaggle-snapshot-sample" / "arxiv-metadata-oai-snapshot.head200.jsonl"
HF = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"
ATOM_2026 = DATA / "arxiv-api-fixtures" / "atom" / "sotawhat_transformer_cs.LG_5entries_2026format.xml"
OAI_DC = DATA / "arxiv-api-fixtures" / "oai" / "atomiklabs_listrecords_oai_dc_cs_resumptionToken.xml"


def test_import_counts_per_format_and_idempotent(cli):
    proc, out = cli.json("import", str(SNAPSHOT), str(HF), str(ATOM_2026), str(OAI_DC))
    assert proc.returncode == 0, proc.stderr
    assert out == {"added": 200 + 30 + 5 + 5, "updated": 0, "unchanged": 0, "rejected": 0, "files_unreadable": 0, "errors": []}
    proc, out = cli.json("import", str(SNAPSHOT), str(HF), str(ATOM_2026), str(OAI_DC))
    assert out["added"] == 0 and out["updated"] == 0 and out["unchanged"] == 240
    _, stats = cli.json("stats")
    assert stats["papers"] == 240
    assert stats["by_source"] == {"arxiv-snapshot": 200, "hf-daily": 30, "arxiv-api": 5, "arxiv-oai": 5}
    assert stats["hf_listed"] == 30


def test_show_prints_one_paper_field_by_field(cli):
    cli("import", str(SNAPSHOT), check=True)
    proc, p = cli.json("show", "arXiv:0704.0001v2")
    assert proc.returncode == 0
    assert p["id"] == "0704.0001"
    assert p["version"] == 2
    assert p["title"].startswith("Calculation of prompt diphoton production cross sections")
    assert "\n" not in p["title"]
    assert p["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert p["categories"] == ["hep-ph"] and p["primary_category"] == "hep-ph"
    assert p["published"] == "2007-04-02T19:18:42Z"
    assert p["updated"] == "2007-07-24T20:10:27Z"
    assert p["doi"] == "10.1103/PhysRevD.76.013009"
    assert p["journal_ref"] == "Phys.Rev.D76:013009,2007"
    text = cli("show", "0704.0001", check=True).stdout
    assert "Calculation of prompt diphoton" in text and "hep-ph" in text


def test_show_unknown_id_is_clear(cli):
    cli("import", str(HF), check=True)
    proc = cli("show", "9999.99999")
    assert proc.returncode == 2
    assert "no paper with id '9999.99999'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hf_upvotes_kept(cli):
    cli("import", str(HF), check=True)
    raw = json.loads(HF.read_text())
    top = max(raw, key=lambda it: it["paper"]["upvotes"])
    _, p = cli.json("show", top["paper"]["id"])
    (listing,) = p["hf_listings"]
    assert listing["day"] == "2026-06-12" and listing["upvotes"] == top["paper"]["upvotes"]
    assert listing["num_comments"] == top["numComments"]
    # Hugging Face's own fields travel with the listing.
    assert listing["fields"]["github_repo"] == top["paper"]["githubRepo"]
    assert listing["fields"]["ai_summary"] == top["paper"]["ai_summary"]
    assert "hf-daily" in p["sources"]


def test_malformed_lines_reported_good_ones_land(cli, tmp_path):
    lines = SNAPSHOT.read_text().splitlines()[:10]
    lines.insert(3, '{"id": "0704.9999", "title": broken json')
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(lines) + "\n")
    proc, out = cli.json("import", str(f))
    assert proc.returncode == 0
    assert out["added"] == 10 and out["rejected"] == 1
    assert out["errors"][0]["where"] == f"{f}:4"
    proc = cli("import", "--strict", str(f))
    assert proc.returncode == 1


def test_nothing_readable_exits_nonzero_without_traceback(cli, tmp_path):
    missing = tmp_path / "nope.jsonl"
    proc, out = cli.json("import", str(missing))
    assert proc.returncode == 1
    # A missing file is an unreadable file, not a rejected record (issue 9).
    assert (out["rejected"], out["files_unreadable"]) == (0, 1)
    assert out["errors"] == [{"where": str(missing), "why": "no such file"}]
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 this is no format at all")
    proc = cli("import", str(junk))
    assert proc.returncode == 1
    assert "format" in proc.stderr and "Traceback" not in proc.stderr


def test_truncated_gzip_keeps_records_before_the_cut(cli, tmp_path):
    blob = gzip.compress(SNAPSHOT.read_bytes())
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(blob[: len(blob) // 2])
    proc, out = cli.json("import", str(f))
    assert proc.returncode == 0
    assert 0 < out["added"] < 200 and out["rejected"] == 1
    assert "gzip" in out["errors"][0]["why"]


def test_errors_capped_count_exact(cli, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text("".join("{bad\n" for _ in range(250)) + SNAPSHOT.read_text().splitlines()[0] + "\n")
    proc, out = cli.json("import", str(f), "--format", "arxiv-snapshot")
    assert out["rejected"] == 250 and out["added"] == 1
    assert len(out["errors"]) == 100


def test_xxe_refused(cli, tmp_path):
    f = tmp_path / "evil.xml"
    f.write_text(
        '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/2401.00001v1</id>'
        "<title>&xxe;</title></entry></feed>"
    )
    proc, out = cli.json("import", str(f), "--format", "arxiv-atom")
    assert proc.returncode == 1
    assert out["added"] == 0 and "refused" in out["errors"][0]["why"]


def test_settings_env_file_and_masking(cli, tmp_path):
    cfg = tmp_path / "pf.toml"
    cfg.write_text('smtp_host = "mail.example.org"\nsecret = "s3cret-value"\n')
    proc, s = cli.json("--config", str(cfg), "settings", env={"PAPERFEED_SMTP_PORT": "2525"})
    assert proc.returncode == 0
    assert s["smtp_host"] == {"value": "mail.example.org", "from": f"file {cfg}", "help": s["smtp_host"]["help"]}
    assert s["smtp_port"]["value"] == "2525" and s["smtp_port"]["from"] == "env PAPERFEED_SMTP_PORT"
    assert s["secret"]["value"] == "********"
    assert "s3cret" not in proc.stdout
    assert s["db"]["from"] == "env PAPERFEED_DB"


def test_settings_validated_at_start(cli, tmp_path):
    proc = cli("stats", env={"PAPERFEED_SMTP_PORT": "seventy"})
    assert proc.returncode == 2
    assert "smtp_port" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_setting = 1\n")
    proc = cli("--config", str(bad), "stats")
    assert proc.returncode == 2 and "no_such_setting" in proc.stderr


def test_db_option_overrides_env(cli, tmp_path):
    other = tmp_path / "other.db"
    cli("--db", str(other), "import", str(HF), check=True)
    assert other.exists()
    _, s = cli.json("stats")
    assert s["papers"] == 0


def test_sample_import_is_offline_and_rich(cli):
    proc, out = cli.json("import", "--sample")
    assert proc.returncode == 0 and out["rejected"] == 0
    assert out["added"] == 61  # a day of HF papers and the arXiv samples; no seed records
    _, s = cli.json("stats")
    assert {"hf-daily", "arxiv-api", "arxiv-oai"} <= set(s["by_source"])


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path,cmd", list(_commands(main)), ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_command_has_help_and_an_example(path, cmd):
    assert cmd.help and re.search(r"Example: .*paperfeed ", cmd.help), f"`paperfeed {' '.join(path)}` needs an example"
    for p in cmd.params:
        if isinstance(p, click.Option):
            assert p.help, f"option {p.name} of `{' '.join(path)}` has no help"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_postgres_is_a_clear_error_without_the_password(cli):
    cli.db = f"postgresql://reader:hunter2-secret@127.0.0.1:{_free_port()}/paperfeed"
    proc = cli("stats", timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert "127.0.0.1" in proc.stderr  # says which server it could not reach


def test_missing_postgres_database_and_bad_login_are_clear_errors(cli, pg_server):
    no_db = pg_server.url("no_such_database")
    no_role = pg_server.url("postgres").replace(f"//{pg_server.user}@", "//nobody-here:wrong-pw@")
    assert no_role != pg_server.url("postgres")
    for url, says in ((no_db, "no_such_database"), (no_role, "nobody-here")):
        cli.db = url
        proc = cli("stats", timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert says in proc.stderr
        assert "wrong-pw" not in proc.stderr + proc.stdout
