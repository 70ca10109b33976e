"""A real HTTP server on loopback that replays recorded responses, for the harvest tests.

Each test gives the server a ``respond(request) -> reply`` function; the server logs every
request it receives (arrival time, path, query, headers), which is what the spacing and
Retry-After tests measure. Replies can also drop the connection mid-body or hold a request
until the test lets it go (to kill a harvester while it waits).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from paperfeed.config import load_settings

DATA = Path(__file__).resolve().parent / "data"
OAI_DC_PAGE = DATA / "arxiv-api-fixtures" / "oai" / "atomiklabs_listrecords_oai_dc_cs_resumptionToken.xml"
OAI_HEP_EX = DATA / "arxiv-api-fixtures" / "oai" / "hepcrawl_arxiv-physics-hep-ex.xml"
OAI_HEP_TH = DATA / "arxiv-api-fixtures" / "oai" / "hepcrawl_arxiv-physics-hep-th.xml"
ATOM_ONE = DATA / "arxiv-api-fixtures" / "atom" / "zoia_id_list_1601.00001.xml"
ATOM_TWO = DATA / "arxiv-api-fixtures" / "atom" / "xiv_cs.RO_neural_2entries.xml"
HF_DAY = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"


@dataclass
class Request:
    t: float  # time.monotonic() when the request line and headers had arrived
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/xml; charset=utf-8"


@dataclass
class Drop:
    """Send the headers and part of the body, then close the socket: a dropped connection."""

    body: bytes
    keep: int = 200  # bytes of the body actually sent


@dataclass
class Hold:
    """Keep the request waiting until ``release`` is set (or ``timeout``), then reply."""

    release: threading.Event
    then: Reply
    timeout: float = 30.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers and httpx use it

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv: ReplayServer = self.server.replay  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        req = Request(
            t=time.monotonic(),
            path=parts.path,
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with srv.lock:
            srv.log.append(req)
        reply = srv.respond(req)
        if isinstance(reply, Hold):
            reply.release.wait(reply.timeout)
            reply = reply.then
        if isinstance(reply, Drop):
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body[: reply.keep])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed while we held its request


class ReplayServer:
    def __init__(self) -> None:
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self.respond: Callable[[Request], Reply | Drop | Hold] = lambda req: Reply(404)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.replay = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def requests(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if path is None or r.path == path]

    def wait_for(self, pred: Callable[[list[Request]], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.requests()):
                return
            time.sleep(0.02)
        raise AssertionError(f"server never saw the expected requests: {self.requests()}")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def gaps(reqs: list[Request]) -> list[float]:
    return [b.t - a.t for a, b in zip(reqs, reqs[1:])]


# --- OAI-PMH pages derived from one real page ------------------------------------------------
# The recorded ListRecords page (atomiklabs, set cs, oai_dc) holds 5 records and a
# resumptionToken. To get a multi-page harvest from real data we cut its records into
# several pages: each page is the original document (same root, responseDate, request
# element) with a slice of the original <record> elements, and a resumptionToken in the
# original's format ("6960524|<next cursor + 1>", cursor and completeListSize attributes);
# the last page carries the empty token that ends a list. Nothing inside a record changes.

_RECORD = re.compile(r"<record>.*?</record>", re.S)
_TOKEN = re.compile(r"<resumptionToken[^>]*?(?:/>|>.*?</resumptionToken>)", re.S)


def oai_pages(
    sizes: list[int], sources: tuple[Path, ...] = (OAI_DC_PAGE,), prefix: str = "6960524"
) -> tuple[list[bytes], list[str]]:
    """(pages, tokens): ``tokens[i]`` is the token that asks for ``pages[i + 1]``."""
    texts = [p.read_text(encoding="utf-8") for p in sources]
    records = [r for t in texts for r in _RECORD.findall(t)]
    assert sum(sizes) == len(records), (sizes, len(records))
    first = texts[0]
    head = first[: first.index("<record>")]
    tail = _TOKEN.sub("", first[first.rindex("</record>") + len("</record>") :])
    pages, tokens, cursor = [], [], 0
    for i, n in enumerate(sizes):
        chunk = records[cursor : cursor + n]
        attrs = f'cursor="{cursor}" completeListSize="{len(records)}"'
        if i < len(sizes) - 1:
            token = f"{prefix}|{cursor + n + 1}"
            tokens.append(token)
            tok = f"<resumptionToken {attrs}>{token}</resumptionToken>"
        else:
            tok = f"<resumptionToken {attrs}/>"
        pages.append((head + "\n".join(chunk) + "\n" + tok + tail).encode("utf-8"))
        cursor += n
    return pages, tokens


def oai_ids(page: bytes) -> list[str]:
    return re.findall(r"<identifier>oai:arXiv.org:([^<]+)</identifier>", page.decode())


def oai_router(pages: list[bytes], tokens: list[str], override=None):
    """A respond function serving ``pages`` by resumptionToken. ``override(req, index)`` may
    return another reply (an error, a dropped connection) for a page request."""
    index_of = {t: i + 1 for i, t in enumerate(tokens)}

    def respond(req: Request):
        if req.params.get("verb") != "ListRecords":
            return Reply(400, b"bad verb")
        tok = req.params.get("resumptionToken")
        i = 0 if tok is None else index_of.get(tok)
        if i is None:
            return Reply(body=oai_error("badResumptionToken", "unknown token"))
        if override is not None:
            r = override(req, i)
            if r is not None:
                return r
        return Reply(body=pages[i])

    return respond


def oai_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
        "<responseDate>2024-01-27T17:53:42Z</responseDate>\n"
        '<request verb="ListRecords">http://export.arxiv.org/oai2</request>\n'
        f'<error code="{code}">{message}</error>\n</OAI-PMH>\n'
    ).encode()


def empty_oai_page() -> bytes:
    """A well-formed ListRecords answer with no records, no token and no error."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
        "<responseDate>2024-01-27T17:53:42Z</responseDate>\n"
        '<request verb="ListRecords">http://export.arxiv.org/oai2</request>\n'
        "<ListRecords>\n</ListRecords>\n</OAI-PMH>\n"
    ).encode()


# --- fixtures (imported by the test_harvest*.py modules) -------------------------------------
CONTACT = "feeds@example.org"


@pytest.fixture
def server():
    srv = ReplayServer()
    yield srv
    srv.close()


def settings_for(server: ReplayServer, **env: object):
    """Settings pointing every harvest URL at the loopback server, with quick timings."""
    values = {
        "PAPERFEED_ARXIV_OAI_URL": server.url + "/oai",
        "PAPERFEED_ARXIV_API_URL": server.url + "/api/query",
        "PAPERFEED_HF_API_URL": server.url + "/api/daily_papers",
        "PAPERFEED_CONTACT_EMAIL": CONTACT,
        "PAPERFEED_HARVEST_INTERVAL": "0.02",
        "PAPERFEED_HARVEST_MAX_RETRIES": "3",
        "PAPERFEED_HARVEST_BACKOFF_CAP": "5",
        "PAPERFEED_HARVEST_TIMEOUT": "10",
        # Embedding after each harvest loads a model: only the tests about it turn it on.
        "PAPERFEED_HARVEST_EMBED": "false",
    }
    values.update({f"PAPERFEED_{k.upper()}": str(v) for k, v in env.items()})
    return values, load_settings(env=values)


def without_final_token(page: bytes) -> bytes:
    """The last page of a list as some servers send it: no resumptionToken element at all
    (the spec asks for an empty one; sickle and oaipmh-scythe end the list either way)."""
    out = _TOKEN.sub("", page.decode("utf-8")).encode("utf-8")
    assert out != page, "the page had no resumptionToken to drop"
    return out


# --- a small OAI-PMH repository: selective harvesting, corrections and deletions -------------
_DATESTAMP = re.compile(r"<datestamp>[^<]*</datestamp>")
_TITLE = re.compile(r"<title>.*?</title>", re.S)
_ID = re.compile(r"<identifier>oai:arXiv.org:([^<]+)</identifier>")
_SET = re.compile(r"<setSpec>([^<]+)</setSpec>")


class OaiRepository:
    """An OAI-PMH ListRecords endpoint over real recorded records (arXiv format), as a
    repository keeps them: each record has a datestamp (day granularity) and ``from`` /
    ``until`` select by it, inclusive; an unknown set or an empty window answers
    ``noRecordsMatch``; lists are cut into pages of ``page_size`` with resumption tokens, and
    the last page's empty token is left out when ``final_token`` is False.

    ``correct_title`` changes a record the way arXiv's corrections do (a new title and a newer
    datestamp; no new version, no new ``<updated>``); ``delete`` turns it into a
    ``<header status="deleted">`` record. ``snapshot`` keeps the records as they are now, to
    replay an older copy later."""

    def __init__(self, sources: tuple[Path, ...] = (OAI_HEP_EX,), page_size: int = 100,
                 final_token: bool = True):  # fmt: skip
        text = sources[0].read_text(encoding="utf-8")
        self._head = text[: text.index("<ListRecords>") + len("<ListRecords>")]
        self.records: dict[str, dict] = {}
        for src in sources:
            for rec in _RECORD.findall(src.read_text(encoding="utf-8")):
                stamp = _DATESTAMP.search(rec).group(0)[len("<datestamp>") : -len("</datestamp>")]
                self.records[_ID.search(rec).group(1)] = {"xml": rec, "datestamp": stamp}
        self.page_size = page_size
        self.final_token = final_token

    def ids(self) -> list[str]:
        return list(self.records)

    def snapshot(self) -> dict[str, dict]:
        return {k: dict(v) for k, v in self.records.items()}

    def restore(self, records: dict[str, dict]) -> None:
        self.records = {k: dict(v) for k, v in records.items()}

    def correct_title(self, arxiv_id: str, title: str, datestamp: str) -> None:
        r = self.records[arxiv_id]
        xml = _TITLE.sub(lambda m: f"<title>{title}</title>", r["xml"], count=1)
        r["xml"] = _DATESTAMP.sub(f"<datestamp>{datestamp}</datestamp>", xml, count=1)
        r["datestamp"] = datestamp

    def delete(self, arxiv_id: str, datestamp: str) -> None:
        r = self.records[arxiv_id]
        sets = "".join(f"<setSpec>{s}</setSpec>" for s in _SET.findall(r["xml"]))
        r["xml"] = (
            f'<record>\n<header status="deleted">\n <identifier>oai:arXiv.org:{arxiv_id}'
            f"</identifier>\n <datestamp>{datestamp}</datestamp>\n {sets}\n</header>\n</record>"
        )
        r["datestamp"] = datestamp

    def _select(self, set_spec: str, since: str, until: str) -> list[str]:
        return [
            r["xml"]
            for r in self.records.values()
            if set_spec in _SET.findall(r["xml"]) and since <= r["datestamp"] <= until
        ]

    def respond(self, req: Request) -> Reply:
        p = req.params
        if p.get("verb") != "ListRecords":
            return Reply(body=oai_error("badVerb", "only ListRecords here"))
        if "resumptionToken" in p:
            try:
                set_spec, since, until, start = p["resumptionToken"].split("|")
                offset = int(start)
            except ValueError:
                return Reply(body=oai_error("badResumptionToken", "unknown token"))
        else:
            set_spec, since, until, offset = p["set"], p["from"], p["until"], 0
        chosen = self._select(set_spec, since, until)
        if not chosen:
            return Reply(body=oai_error("noRecordsMatch", "No records match"))
        page = chosen[offset : offset + self.page_size]
        end = offset + len(page)
        attrs = f'cursor="{offset}" completeListSize="{len(chosen)}"'
        if end < len(chosen):
            tok = f"<resumptionToken {attrs}>{set_spec}|{since}|{until}|{end}</resumptionToken>"
        else:
            tok = f"<resumptionToken {attrs}/>" if self.final_token else ""
        body = self._head + "\n" + "\n".join(page) + "\n" + tok + "\n</ListRecords>\n</OAI-PMH>\n"
        return Reply(body=body.encode("utf-8"))
