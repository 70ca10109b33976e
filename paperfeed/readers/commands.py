"""CLI commands for readers: accounts, sign-in links, the library and "For you"."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..clictx import Context, echo_json, pass_ctx
from ..errors import InputError, NotFoundError

__all__ = ["register"]

# As `paperfeed search` does: index up to this many new papers before matching titles.
_CATCH_UP = 20_000


def _user(c: Context, email: str):
    user = c.store.find_user(email)
    if user is None:
        raise NotFoundError(f"no reader with the address {email!r} (add one with `paperfeed user add`)")
    return user


def _print_import(result, as_json: bool) -> None:
    if as_json:
        echo_json(result.as_dict())
        return
    click.echo(
        f"{len(result.saved)} saved, {len(result.already)} already in the library, "
        f"{len(result.unmatched)} not found, {len(result.errors)} unreadable"
        + (f" ({len(result.fetched)} fetched from arXiv)" if result.fetched else "")
    )
    for n in result.notes:
        click.echo(f"  note: {n}", err=True)
    for where, what in result.unmatched:
        click.echo(f"  not found: {where}: {what}", err=True)
    for where, why in result.errors:
        click.echo(f"  {where}: {why}", err=True)


def register(main: click.Group) -> None:
    @main.group()
    def user() -> None:
        """Readers' accounts: add, list, remove, and sign-in links.

        Example: paperfeed user add ada@example.org --name "Ada Lovelace"
        """

    @user.command("add")
    @click.argument("email")
    @click.option("--name", default="", help="The reader's name (optional).")
    @pass_ctx
    def user_add(c: Context, email: str, name: str) -> None:
        """Add a reader (nothing changes when the address is already one).

        Example: paperfeed user add ada@example.org --name "Ada Lovelace"
        """
        u, new = c.store.get_or_create_user(email)
        if name:
            c.store.set_user_name(u.id, name)
        click.echo(f"{'added' if new else 'already a reader'}: {u.email} (id {u.id})")

    @user.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_ctx
    def user_list(c: Context, as_json: bool) -> None:
        """List readers with their library size.

        Example: paperfeed user list --json
        """
        rows = []
        for u in c.store.list_users():
            rows.append({"id": u.id, "email": u.email, "name": u.name, "created_at": u.created_at,
                         "last_login_at": u.last_login_at,
                         "library": len(c.store.library_pks(u.id))})  # fmt: skip
        if as_json:
            echo_json(rows)
            return
        for r in rows:
            click.echo(f"{r['id']:>6}  {r['email']}  {r['name']}  library {r['library']}  "
                       f"last sign-in {r['last_login_at'] or '-'}")  # fmt: skip

    @user.command("remove")
    @click.argument("email")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_ctx
    def user_remove(c: Context, email: str, yes: bool) -> None:
        """Delete a reader and every row about them (library, votes, follows, tokens ...).

        Example: paperfeed user remove ada@example.org --yes
        """
        u = _user(c, email)
        if not yes and not click.confirm(f"Delete {u.email} and everything about them?"):
            raise click.Abort()
        c.store.delete_user(u.id)
        click.echo(f"removed {u.email}")

    @user.command("login-link")
    @click.argument("email")
    @pass_ctx
    def user_login_link(c: Context, email: str) -> None:
        """Print a sign-in link for an address (for an administrator to pass on). It works
        once, for login_link_minutes; the reader is created when it is used.

        Example: paperfeed user login-link ada@example.org
        """
        from .signin import login_link

        click.echo(login_link(c.settings, email))

    @main.group()
    def library() -> None:
        """A reader's library: add papers by id, import a BibTeX or CSL-JSON export.

        Example: paperfeed library add ada@example.org 1706.03762 10.1038/nature14539
        """

    @library.command("add")
    @click.argument("email")
    @click.argument("ids", nargs=-1, required=True)
    @click.option("--tag", default="", help="Tag every paper added.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_ctx
    def library_add(c: Context, email: str, ids: tuple[str, ...], tag: str, as_json: bool) -> None:
        """Save papers by arXiv id, arXiv URL or DOI to a reader's library.

        Example: paperfeed library add ada@example.org 1706.03762 https://arxiv.org/abs/2606.00467
        """
        from .importing import add_to_library, refs_from_text

        u = _user(c, email)
        result = add_to_library(c.store, c.settings, u.id, refs_from_text("\n".join(ids), "argument"),
                                [tag] if tag else None, catch_up=_CATCH_UP)  # fmt: skip
        _print_import(result, as_json)

    @library.command("import")
    @click.argument("email")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--tag", default="", help="Tag every paper added.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @pass_ctx
    def library_import(c: Context, email: str, file: Path, tag: str, as_json: bool) -> None:
        """Import a BibTeX export (Zotero, Mendeley, JabRef) or Zotero CSL-JSON into a
        reader's library. Malformed entries are reported with file:line and skipped.

        Example: paperfeed library import ada@example.org My-Library.bib --tag thesis
        """
        from .importing import add_to_library, refs_from_file

        u = _user(c, email)
        try:
            data = file.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {file}: {e.strerror}") from None
        refs, errors = refs_from_file(data, str(file))
        result = add_to_library(c.store, c.settings, u.id, refs, [tag] if tag else None,
                                catch_up=_CATCH_UP)  # fmt: skip
        result.errors = errors + result.errors
        _print_import(result, as_json)
        if not result.saved and not result.already and (errors or result.unmatched):
            sys.exit(1)

    @main.command()
    @click.argument("email")
    @click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500),
                  help="How many papers.")  # fmt: skip
    @click.option("--since", help="Only papers that appeared on or after this date (YYYY-MM-DD).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON: id, title, score, reasons.")
    @pass_ctx
    def recommend(c: Context, email: str, limit: int, since: str | None, as_json: bool) -> None:
        """Print a reader's "For you" papers with the reasons they were picked.

        Example: paperfeed recommend ada@example.org --limit 10 --json
        """
        from ..rank.foryou import recommend as run

        u = _user(c, email)
        recs = run(c.store, c.settings, u.id, limit=limit, since=since)
        papers = c.store.get_papers_by_pk([r.pk for r in recs])
        rows = [{"id": r.paper_id, "title": papers[r.pk].paper.title, "score": r.score,
                 "reasons": r.reasons} for r in recs if r.pk in papers]  # fmt: skip
        if as_json:
            echo_json(rows)
            return
        if not rows:
            click.echo("nothing to recommend yet: save papers, rate some, or follow categories")
        for i, r in enumerate(rows, 1):
            click.echo(f"{i:>3}. {r['id']}  {r['title']}")
            click.echo(f"     {r['score']:.3f}  " + "; ".join(r["reasons"]))
