"""The ``paperfeed`` command: a thin layer over the library.

Every command's help ends with an example (tests/test_cli_docs.py fails when one does not).
User mistakes raise ``PaperfeedError`` and are printed as one line, never as a traceback.
"""

from __future__ import annotations

import importlib
import sys
import click

from .clictx import Context, echo_json, pass_ctx
from .config import load_settings
from .errors import PaperfeedError
from .ids import normalize_id
from .importer import import_files, sample_path
from .sources import FORMATS, Limits

__all__ = ["main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar=None, help="Database file (env PAPERFEED_DB; default paperfeed.db).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML file of settings (see `paperfeed settings`).",
)
@click.version_option(package_name="paperfeed")
@click.pass_context
def main(ctx: click.Context, db: str | None, config_file: str | None) -> None:
    """paperfeed: a self-hosted feed of research papers.

    Example: paperfeed --db papers.db import arxiv-metadata-oai-snapshot.json
    """
    settings = load_settings(config_file, db=db)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


@main.command("import")
# Plain strings, not click.Path: a missing file, a directory or an unreadable one is reported
# by the importer like any other unreadable file, and the other files are still imported.
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Force a format (default: detect).")
@click.option("--sample", is_flag=True, help="Also import the bundled sample of real papers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@click.option("--strict", is_flag=True, help="Exit non-zero when any record is rejected.")
@pass_ctx
def import_cmd(c: Context, paths: tuple[str, ...], fmt: str | None, sample: bool, as_json: bool, strict: bool) -> None:
    """Import papers from files (plain or gzipped), detecting each file's format.

    Formats: the arXiv metadata snapshot (Kaggle JSON lines), arXiv API Atom responses,
    arXiv OAI-PMH responses (oai_dc and arXiv), Hugging Face /api/daily_papers JSON, BEIR
    corpus.jsonl, and paperfeed's own JSON lines. Re-importing a file changes nothing; a newer
    version of a paper replaces an older one. Bad records (and records over the size caps,
    settings max_record_bytes, max_abstract_chars ...) are reported and skipped; a file that
    cannot be read is reported and the next one is imported.

    Example: paperfeed import arxiv-metadata-oai-snapshot.json.gz daily_papers.json --json
    """
    files = list(paths)
    if sample:
        files.insert(0, str(sample_path()))
    if not files:
        raise click.UsageError("give at least one file to import (or --sample)")
    report = import_files(
        c.store,
        files,
        fmt=fmt,
        batch_size=c.settings.import_batch,
        progress=c.progress,
        limits=Limits.from_settings(c.settings),
    )
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(report.summary())
        for e in report.errors:
            click.echo(f"  {e.where}: {e.why}", err=True)
        more = report.rejected + report.files_unreadable - len(report.errors)
        if more > 0:
            click.echo(f"  ... and {more} more", err=True)
    failed = report.rejected + report.files_unreadable
    nothing_read = report.read == 0 and failed > 0
    if nothing_read or (strict and failed):
        sys.exit(1)


@main.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True, help="Print the paper as JSON.")
@pass_ctx
def show(c: Context, paper_id: str, as_json: bool) -> None:
    """Print one paper by id (any version suffix or arXiv URL is accepted).

    Example: paperfeed show 2606.00467
    """
    sp = c.store.get_paper(normalize_id(paper_id))
    if sp is None:
        from .store.postgres import redact_url

        raise PaperfeedError(f"no paper with id {paper_id!r} in {redact_url(c.settings.db)}")
    p = sp.paper
    if as_json:
        from dataclasses import asdict

        d = asdict(p)
        for k in ("source", "upvotes", "num_comments", "listed_on", "hf"):
            d.pop(k)
        d["sources"] = sp.sources
        d["hf_listings"] = sp.listings
        echo_json(d)
        return
    version = f"v{p.version}" if p.version else ""
    click.echo(f"{p.id}{version}  {p.title}")
    click.echo(f"Authors:    {', '.join(p.authors) or '-'}")
    cats = " ".join(p.categories)
    click.echo(f"Categories: {cats or '-'}" + (f" (primary {p.primary_category})" if cats else ""))
    click.echo(f"Published:  {p.published or '-'}   Updated: {p.updated or '-'}")
    for label, value in (("DOI", p.doi), ("Journal", p.journal_ref), ("Comments", p.comments)):
        if value:
            click.echo(f"{label + ':':<11} {value}")
    for name, url in p.links.items():
        click.echo(f"{'Link ' + name + ':':<11} {url}")
    for li in sp.listings:
        click.echo(f"HF daily:   {li['day']}  {li['upvotes']} upvotes, {li['num_comments']} comments")
    click.echo(f"Sources:    {' '.join(sp.sources)}")
    click.echo("")
    click.echo(click.wrap_text(p.abstract, width=88) if p.abstract else "(no abstract)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--top", default=15, show_default=True, help="Categories to list.")
@pass_ctx
def stats(c: Context, as_json: bool, top: int) -> None:
    """Print counts: papers, by archive, by category, by source.

    Example: paperfeed stats --json
    """
    s = c.store.stats()
    if as_json:
        echo_json(s)
        return
    click.echo(f"papers: {s['papers']}  (listed on Hugging Face daily: {s['hf_listed']})")
    click.echo("by source:   " + ", ".join(f"{k} {v}" for k, v in s["by_source"].items()))
    click.echo("by archive:  " + ", ".join(f"{k} {v}" for k, v in s["by_primary_archive"].items()))
    cats = list(s["by_category"].items())
    more = f", ... ({len(cats) - top} more)" if len(cats) > top else ""
    click.echo("by category: " + ", ".join(f"{k} {v}" for k, v in cats[:top]) + more)


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def settings_cmd(c: Context, as_json: bool) -> None:
    """List every setting with its current value (secrets masked) and where it came from.

    Each setting can be given as an environment variable PAPERFEED_<NAME> or in the TOML
    file named by --config.

    Example: PAPERFEED_SMTP_PORT=2525 paperfeed settings
    """
    from .search.cpu import choose_backend, cpu_info, usable_cpus

    rows = c.settings.rows()
    # What "auto" means on this machine, without loading the model.
    resolved = {}
    if c.settings.embed_backend == "auto":
        name, why = choose_backend()[0]
        resolved["embed_backend"] = f"here: {name}, because {why}; CPU {cpu_info().summary()}"
    if not c.settings.threads:
        resolved["threads"] = (
            f"here: {usable_cpus()} for one process, divided by `serve --workers`"
        )
    if as_json:
        echo_json({
            name: {"value": v, "from": o, "help": h, **({"resolved": resolved[name]}
                                                        if name in resolved else {})}
            for name, v, o, h in rows
        })  # fmt: skip
        return
    width = max(len(r[0]) for r in rows)
    for name, value, origin, help_ in rows:
        click.echo(f"{name:<{width}}  {value}  [{origin}]")
        if name in resolved:
            click.echo(f"{'':<{width}}  ({resolved[name]})")
        click.echo(f"{'':<{width}}  {help_}")


# Feature modules add their commands here (search, web, harvest, ...), each in its own file.
_COMMAND_MODULES: list[str] = [
    "paperfeed.search.commands",
    "paperfeed.harvest.commands",
    "paperfeed.web.commands",
    "paperfeed.digest.commands",
    "paperfeed.readers.commands",
    "paperfeed.store.commands",
]
for _mod in _COMMAND_MODULES:
    importlib.import_module(_mod).register(main)


def run() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PaperfeedError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
