"""Digest preferences from a form (the account page) or the CLI: validated here, stored by
``store.set_digest_prefs``. Every bad value gets a message naming the field."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InputError
from ..models import DIGEST_SECTIONS

__all__ = ["parse_prefs", "WEEKDAYS", "SECTION_LABELS", "MAX_PAPERS"]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SECTION_LABELS = {
    "trending": "Trending and new papers",
    "follows": "Papers by authors and in categories you follow",
    "searches": "New papers close to your saved searches",
    "foryou": "Your \u201cFor you\u201d picks",
}
MAX_PAPERS = 50


def _int(form: dict, name: str, lo: int, hi: int) -> int:
    raw = str(form.get(name, "")).strip()
    if not raw.lstrip("-").isdigit() or not lo <= int(raw) <= hi:
        raise InputError(f"{name}: must be a whole number from {lo} to {hi}")
    return int(raw)


def parse_prefs(form: dict) -> dict:
    """Preferences from ``form`` (strings, as a form posts them; missing keys are left as
    they are). ``sections`` is a list of section names. InputError on a bad value."""
    out: dict = {}
    if "frequency" in form:
        freq = str(form["frequency"]).strip()
        if freq not in ("daily", "weekly"):
            raise InputError("frequency: must be daily or weekly")
        out["frequency"] = freq
    if "weekday" in form:
        out["weekday"] = _int(form, "weekday", 0, 6)
    if "send_hour" in form:
        out["send_hour"] = _int(form, "send_hour", 0, 23)
    if "timezone" in form:
        tz = str(form["timezone"]).strip()
        try:
            if not tz or len(tz) > 64:
                raise ValueError
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError("timezone: not a known time zone (e.g. Europe/Berlin, UTC)") from None
        out["timezone"] = tz
    if "max_papers" in form:
        out["max_papers"] = _int(form, "max_papers", 1, MAX_PAPERS)
    if "min_score" in form:
        raw = str(form["min_score"]).strip()
        if raw == "":
            out["min_score"] = None
        else:
            try:
                v = float(raw)
            except ValueError:
                v = -1.0
            if not 0.0 <= v <= 1.0:
                raise InputError("min_score: leave it empty, or give a number from 0 to 1")
            out["min_score"] = v
    if "sections" in form:
        chosen = list(form["sections"])
        bad = [s for s in chosen if s not in DIGEST_SECTIONS]
        if bad:
            raise InputError(f"sections: unknown {', '.join(map(str, bad))[:80]}")
        if not chosen:
            raise InputError("sections: choose at least one (or unsubscribe)")
        out["sections"] = tuple(s for s in DIGEST_SECTIONS if s in chosen)
    return out
