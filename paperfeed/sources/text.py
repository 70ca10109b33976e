"""Text, date and link helpers shared by the source parsers."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["clean", "parse_date", "day_of", "first_doi", "arxiv_links"]

_MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip


def clean(s: str | None) -> str | None:
    """Collapse arXiv's hard line-wraps and runs of whitespace to single spaces; strip.

    None stays None (so "absent" and "empty" remain distinguishable); "" stays "".
    """
    if s is None:
        return None
    return " ".join(s.split())


def _utc_iso(dt: datetime) -> str:
    # A date-time with no offset is taken as UTC: that is what every source here means.
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
        f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    )


def _fast_rfc2822(s: str) -> str | None:
    """The snapshot's fixed "Mon, 2 Apr 2007 19:18:42 GMT" without the email parser.

    The snapshot carries one such date per version, so this is on the hot import path;
    anything unusual returns None and goes the slow, general way.
    """
    parts = s.split(" ")
    if len(parts) != 6 or parts[5] != "GMT":
        return None
    _, d, mon, y, hms, _ = parts
    m = _MONTHS.get(mon)
    if m is None or len(hms) != 8 or hms[2] != ":" or hms[5] != ":":
        return None
    try:
        # Building the datetime validates every field (31 Feb, hour 25 ...).
        dt = datetime(int(y), m, int(d), int(hms[:2]), int(hms[3:5]), int(hms[6:]))
    except ValueError:
        return None
    return f"{dt.year:04d}-{m:02d}-{dt.day:02d}T{hms}Z"


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
        "pdf": f"https://arxiv.org/pdf/{base_id}v{version}" if version else f"https://arxiv.org/pdf/{base_id}",
    }
    if doi:
        links["doi"] = f"https://doi.org/{doi}"
    return links
