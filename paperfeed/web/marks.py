"""What a signed-in reader sees on every card: their vote, whether they saved or rated the
paper. Computed once per page for the papers on it (three small queries), so templates
never reach the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from ..models import User

__all__ = ["Marks", "card_marks"]


@dataclass(slots=True)
class Marks:
    voted: set[int] = field(default_factory=set)
    saved: set[int] = field(default_factory=set)
    rated: dict[int, int] = field(default_factory=dict)


def card_marks(request: Request, user: User | None, ctx: dict) -> Marks:
    """The reader's marks for the papers a page shows (``entries``, or ``sp`` on a paper page)."""
    if user is None:
        return Marks()
    pks = [e.pk for e in ctx.get("entries") or [] if getattr(e, "pk", None)]
    if ctx.get("sp") is not None:
        pks.append(ctx["sp"].pk)
    if not pks:
        return Marks()
    store = request.app.state.store
    wanted = set(pks)
    saved = {pk for pk in store.library_pks(user.id) if pk in wanted}
    rated = {pk: v for pk, v in store.ratings(user.id).items() if pk in wanted}
    return Marks(store.user_votes(user.id, pks), saved, rated)
