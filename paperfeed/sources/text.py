"""Text, date and link helpers shared by the source parsers."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["clean", "parse_date", "day_of", "first_doi", "arxiv_links", "join_initials"]

_MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip
# Whitespace that str.split() splits on besides " " and "\n"; clean() defers to split()
# when any is present.
_ODD_ASCII_SPACE = ("\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")
_UNICODE_SPACE = (
    "\x85", "\xa0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005",
    "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f",
    "\u3000",
)  # fmt: skip
# "Mon, 2 Apr 2007" -> "2007-04-02" ("" when invalid). Thousands of papers share a day, so
# the snapshot's version dates hit this cache nearly always; the cap bounds odd inputs.
_DAY_CACHE: dict[str, str] = {}
_DAY_CACHE_MAX = 100_000


def clean(s: str | None) -> str | None:
    """Collapse arXiv's hard line-wraps and runs of whitespace to single spaces; strip.

    None stays None (so "absent" and "empty" remain distinguishable); "" stays "".
    Same result as ``" ".join(s.split())``, but text without odd whitespace (nearly every
    abstract) takes a path of C-level searches and replaces that is 2-3x faster: this runs
    on every snapshot record.
    """
    if s is None:
        return None
    if "\n" in s:
        s = s.replace("\n  ", " ").replace("\n", " ")  # arXiv wraps, and paragraph indents
    for ch in _ODD_ASCII_SPACE:
        if ch in s:
            return " ".join(s.split())
    if not s.isascii():
        for ch in _UNICODE_SPACE:
            if ch in s:
                return " ".join(s.split())
    s = s.strip(" ")
    while "  " in s:
        s = s.replace("  ", " ")
    return s


def join_initials(name: str) -> str:
    """``"C. -P. Yuan"`` -> ``"C.-P. Yuan"``: arXiv's author parser puts a space before the
    hyphen of hyphenated initials (also "J. -N. Fuchs", "Z. -X. Shen"); the names as written
    have none."""
    return name.replace(". -", ".-") if ". -" in name else name


def _utc_iso(dt: datetime) -> str:
    # A date-time with no offset is taken as UTC: that is what every source here means.
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    )


def _rfc2822_day(text: str) -> str:
    parts = text.split()
    if len(parts) == 4:  # the weekday is optional in RFC 2822, and never checked here
        parts = parts[1:]
    if len(parts) != 3:
        return ""
    d, mon, y = parts
    m = _MONTHS.get(mon)
    if m is None or not (
        d.isascii() and d.isdigit() and y.isascii() and y.isdigit() and len(y) == 4
    ):
        return ""
    try:
        return date(int(y), m, int(d)).isoformat()
    except ValueError:
        return ""


def _fast_rfc2822(s: str) -> str | None:
    """The snapshot's fixed "Mon, 2 Apr 2007 19:18:42 GMT" without the email parser.

    The snapshot carries one such date per version, so this is on the hot import path;
    anything unusual returns None and goes the slow, general way.
    """
    if len(s) < 25 or s[-4:] != " GMT" or s[-13] != " ":
        return None
    hms = s[-12:-4]
    if not (
        hms.isascii() and hms[2] == ":" and hms[5] == ":"
        and hms[:2].isdigit() and hms[3:5].isdigit() and hms[6:].isdigit()
        and hms[:2] <= "23" and hms[3:5] <= "59" and hms[6:] <= "59"
    ):  # fmt: skip
        return None
    key = s[:-13]
    day = _DAY_CACHE.get(key)
    if day is None:
        day = _rfc2822_day(key)
        if len(_DAY_CACHE) < _DAY_CACHE_MAX:
            _DAY_CACHE[key] = day
    return f"{day}T{hms}Z" if day else None


def parse_date(s: str) -> str:
    """Any date the sources use -> ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or ``YYYY-MM-DD``.

    Accepts RFC 2822 ("Mon, 2 Apr 2007 19:18:42 GMT"), a bare day ("2007-05-23") and
    ISO 8601 / RFC 3339 date-times with "Z", an offset or fractional seconds.
    Raises ValueError naming the text when it is none of these.
    """
    if not isinstance(s, str):
        raise ValueError(f"unparsable date {s!r} (not a string)")
    text = s.strip()
    if not text:
        raise ValueError("empty date")
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"unparsable date {s!r}") from None
    if text[0].isdigit():
        try:
            return _utc_iso(datetime.fromisoformat(text))
        except ValueError:
            pass  # "2 Apr 2007 ..." (RFC 2822 without weekday) starts with a digit too
    fast = _fast_rfc2822(text)
    if fast is not None:
        return fast
    try:
        return _utc_iso(parsedate_to_datetime(text))
    except (ValueError, TypeError, IndexError):
        raise ValueError(f"unparsable date {s!r}") from None


def day_of(s: str) -> str:
    """The UTC day (``YYYY-MM-DD``) of any date ``parse_date`` accepts."""
    return parse_date(s)[:10]


def first_doi(s: str | None) -> str | None:
    """The first DOI of a field that may hold several ("10.1/a, 10.1/b;10.1/c")."""
    if not s:
        return None
    if " " in s or "," in s or ";" in s:
        for token in s.replace(",", " ").replace(";", " ").split():
            return token
        return None
    return s


def arxiv_links(base_id: str, version: int | None, doi: str | None) -> dict[str, str]:
    """Canonical https links for an arXiv paper, the same whichever source it came from, so
    a re-import from another source does not look like a change."""
    links = {
        "abs": f"https://arxiv.org/abs/{base_id}",
        "pdf": f"https://arxiv.org/pdf/{base_id}v{version}"
        if version
        else f"https://arxiv.org/pdf/{base_id}",
    }
    if doi:
        links["doi"] = f"https://doi.org/{doi}"
    return links
