"""CLI commands for the search feature; `register` adds them to the `paperfeed` group."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..clictx import Context, echo_json, pass_ctx
from ..errors import NotFoundError
from ..ids import normalize_id
from . import CLI_CATCH_UP, MAX_LIMIT, MAX_OFFSET

__all__ = ["register"]


def _short_authors(authors: list[str], keep: int = 3) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + f" and {len(authors) - keep} more"


def _print_hits(c: Context, hits, as_json: bool, offset: int = 0) -> None:
    papers = c.store.get_papers_by_pk([h.pk for h in hits])
    rows = []
    for h in hits:
        sp = papers.get(h.pk)
        if sp is None:
            continue
        p = sp.paper
        rows.append({
            "id": h.id,
            "title": p.title,
            "authors": list(p.authors),
            "year": int(p.published[:4]) if (p.published or "")[:4].isdigit() else None,
            "score": h.score,
        })  # fmt: skip
    if as_json:
        echo_json(rows)
        return
    # Scores are left out here: a rank says the same to a reader, and BM25, cosine and
    # fused scores are not on one scale (JSON carries them, scaled to 0..1).
    for i, r in enumerate(rows, offset + 1):
        click.echo(f"{i:>3}. {r['id']:<18} {r['year'] or '':<4}  {' '.join(r['title'].split())}")
        if r["authors"]:
            click.echo(f"{'':<5}{_short_authors(r['authors'])}")


class _QueryCommand(click.Command):
    """A command whose QUERY may begin with '-' (an excluded word): click reads that as an
    unknown option, so the error says to put the query after `--`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click consumes the list it parses
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            known = {o for p in self.params for o in getattr(p, "opts", [])}
            word = next((a for a in given if a == "--" or (
                a.startswith("-") and a.split("=", 1)[0] not in known)), e.option_name)
            raise click.UsageError(
                f"{e.format_message()} A query that begins with '-' must come after `--`, "
                f"e.g. paperfeed {self.name} -- {shlex.quote(word)}",
                ctx,
            ) from None


@click.command("index")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as one JSON object.")
@pass_ctx
def index_cmd(c: Context, as_json: bool) -> None:
    """Update the search indexes: keyword index, paper vectors, vector index.

    Only what changed since the last run is done; an interrupted run resumes where it
    stopped. The indexes live beside the database (setting index_dir) and can be deleted:
    the next run rebuilds them from the database (vectors are kept there). On PostgreSQL
    the keyword index needs no step (papers are searchable as they are stored) and there
    are no index files: this embeds new papers, and each searching process loads the
    vectors from the database.

    Example: paperfeed index
    """
    from . import update_index

    out = update_index(c.store, c.settings, progress=c.progress)
    if as_json:
        echo_json(out)
        return
    keyword = (
        "kept by the database as papers are stored (no step needed)"
        if out.get("keyword") == "database" else f"{out['keyword_indexed']} papers indexed"
    )
    click.echo(
        f"keyword: {keyword}; embedded: {out['embedded']}; "
        f"vectors: {out['vectors']}" + (f" ({out['model_id']})" if out["model_id"] else "")
    )
    if out.get("backend"):
        b = out["backend"]
        click.echo(f"embedding backend: {b['name']} ({b['why']}; {b['threads']} threads)")
    for n in out["notes"]:
        click.echo(f"note: {n}", err=True)


@click.command("search", cls=_QueryCommand)
@click.argument("query")
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "keyword", "semantic"]),
    default="hybrid",
    show_default=True,
    help="Ranking: keyword (BM25), semantic (embeddings) or both fused.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MAX_LIMIT),
              help="Results to print.")
@click.option("--offset", default=0, type=click.IntRange(0, MAX_OFFSET),
              help=f"Results to skip (paging), at most {MAX_OFFSET:,}.")
@click.option("--category", help="Only papers in this category (cs.LG) or archive (cs).")
@click.option("--since", help="Only papers first published on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only papers first published on or before this date (YYYY-MM-DD).")
@click.option("--author", help="Only papers with an author of this name (every part must match).")
@click.option("--json", "as_json", is_flag=True,
              help='Print [{"id","title","authors","year","score"}, ...] (score 0..1, or null '
                   'when not ranked).')  # fmt: skip
@pass_ctx
def search_cmd(c: Context, query: str, mode: str, limit: int, offset: int, category, since,
               until, author, as_json: bool) -> None:
    """Search papers. QUERY takes arXiv's syntax: ti: abs: au: cat: id: prefixes,
    "exact phrases", -excluded words, AND / OR / NOT. A QUERY that begins with '-' goes
    after `--`.

    Papers imported since the last `paperfeed index` are indexed first when they are few
    (up to 20,000; it says so), else the search says how many it cannot see yet. Notes (a
    fallback to keyword ranking, papers without vectors) go to stderr.

    Example: paperfeed search 'ti:transformer "protein folding" -survey' --category cs.LG --json
    """
    from . import search

    res = search(c.store, query, mode=mode, limit=limit, offset=offset, category=category,
                 since=since, until=until, author=author, settings=c.settings,
                 catch_up=CLI_CATCH_UP)  # fmt: skip
    for n in res.notes:
        click.echo(f"note: {n}", err=True)
    _print_hits(c, res.hits, as_json, offset)
    if not as_json:
        if not res.hits:
            click.echo("no results", err=True)
        else:
            about = "" if res.total_exact else "about "
            click.echo(f"{about}{res.total:,} result{'' if res.total == 1 else 's'}", err=True)


@click.command("similar")
@click.argument("paper_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Papers to print.")
@click.option("--json", "as_json", is_flag=True,
              help='Print [{"id","title","authors","year","score"}, ...] (score 0..1).')
@pass_ctx
def similar_cmd(c: Context, paper_id: str, limit: int, as_json: bool) -> None:
    """Papers nearest in meaning to PAPER_ID (itself and its other records excluded).

    Example: paperfeed similar 2606.00467 --json
    """
    from . import similar_response

    if c.store.get_paper(normalize_id(paper_id)) is None:
        raise NotFoundError(f"no paper with id {paper_id!r} in {c.settings.db}")
    res = similar_response(c.store, paper_id, limit=limit, settings=c.settings)
    for n in res.notes:
        click.echo(f"note: {n}", err=True)
    _print_hits(c, res.hits, as_json)


@click.group("eval")
def eval_group() -> None:
    """Measure search quality on public benchmarks.

    Example: paperfeed eval beir ../shared/data/scifact-beir --split train
    """


@eval_group.command("beir")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True,
              help="Which qrels/<split>.tsv to evaluate (train, dev, test).")
@click.option(
    "--mode",
    "modes",
    type=click.Choice(["hybrid", "keyword", "semantic", "all"]),
    default="hybrid",
    show_default=True,
    help="Ranking to evaluate; all runs the three in turn.",
)
@click.option("--db", "db",
              help="Database to index the corpus into: a SQLite file (cached; default under "
                   "cache_dir/beir) or an empty PostgreSQL database's postgresql:// URL.")
@click.option("--vectors-from", "vectors_from",
              help="Another eval database of the same corpus (file or URL) whose vectors are "
                   "copied instead of embedding again (the same model's, for the same text).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"mode","split","queries","ndcg@10","recall@100","p50_ms","p99_ms"}.')
@pass_ctx
def eval_beir(c: Context, folder: Path, split: str, modes: str, db: str | None,
              vectors_from: str | None, as_json: bool) -> None:
    """Evaluate on a BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/SPLIT.tsv).

    The corpus is imported and indexed into its own database once (a second run does not
    re-embed); then every query of the split runs through `paperfeed search`'s code.
    nDCG@10 is computed as trec_eval computes it; latency includes the query's embedding.

    On PostgreSQL (--db postgresql://...) the same queries run on the database's own
    keyword search and in-memory vectors; --vectors-from the SQLite eval database reuses
    its vectors, so the two backends are compared on the same vectors.

    Example: paperfeed eval beir ../shared/data/scifact-beir --split train --mode all --json
    """
    from ..store import is_postgres_url
    from .evaluate import eval_db_path, eval_settings, load_beir, prepare_eval_store, run_eval

    corpus, queries, qrels = load_beir(folder, split)
    if db and is_postgres_url(db):
        target: Path | str = db
    else:
        target = Path(db) if db else eval_db_path(corpus, c.settings)
        if target.is_dir():
            raise click.BadParameter(f"{target} is a folder, not a database file", param_hint="--db")
    settings = eval_settings(c.settings, target)
    store, info = prepare_eval_store(corpus, target, settings, progress=c.progress,
                                     vectors_from=vectors_from)
    try:
        for n in info["notes"]:
            click.echo(f"note: {n}", err=True)
        for mode in (["keyword", "semantic", "hybrid"] if modes == "all" else [modes]):
            res = run_eval(store, settings, corpus, queries, qrels, mode)
            notes = res.pop("notes")
            for n in notes:
                click.echo(f"note: {n}", err=True)
            row = {"mode": res["mode"], "split": split, **{k: v for k, v in res.items()
                                                          if k != "mode"}}
            if as_json:
                echo_json(row)
            else:
                click.echo(
                    f"{row['mode']:<8} {split}: {row['queries']} queries  "
                    f"nDCG@10 {row['ndcg@10']:.4f}  recall@100 {row['recall@100']:.4f}  "
                    f"p50 {row['p50_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms"
                )
    finally:
        store.close()


def register(main: click.Group) -> None:
    for cmd in (index_cmd, search_cmd, similar_cmd, eval_group):
        main.add_command(cmd)
