"""Generated parts of the book: the table of contents, the scorecard, the seed
table, local MathJax.

``python -m gi_lib.book --results-dir DIR --out SRC`` runs inside an assembled
book source folder ``SRC`` (hand-written pages from ``book/`` and the executed
notebooks under ``SRC/notebooks/``) and writes:

- ``SRC/_toc.yml``: the table of contents. The hand-written pages sit in a
  fixed skeleton (:data:`ROOT_PAGE` first, :data:`HAND_WRITTEN_PAGES` last);
  between them, one part per notebook folder (:data:`NOTEBOOK_PARTS`) lists
  the notebooks of :data:`gi_lib.papers.PAPERS` in its order. A paper joins
  the book through its ``PAPERS`` entry alone; a notebook page without one is
  an error, not a page silently left out;
- ``SRC/_generated/scorecard.md``: one table per notebook, built only from the
  results files in ``DIR`` (paper, experiment, metric, the paper's value,
  ours, profile, note), included by ``scorecard.md``;
- ``SRC/_generated/seed_table.md``: the seed list of papers from
  :data:`gi_lib.papers.PAPERS` by category, with each one's status and a link
  to its notebook, included by ``intro.md``;
- ``SRC/assets/mathjax/``: MathJax 2 from the ``jupyter_server_mathjax``
  package, served from the built book so equations render with no network;
- on every notebook page, a last section "Run this page yourself": its
  source (``.py``, copied from ``--sources``) and the executed ``.ipynb`` to
  download (both under ``SRC/downloads/``, as they ran), the profile and
  parameters of the run from its results file, and the one command that
  reruns it with other parameters. Tables of the page's outputs that show
  pandas' default index (0, 1, 2, ...) are marked so that the book's CSS
  hides that column.

A link is written only to a notebook page present in ``SRC``, so the strict
(nitpicky) build never meets a dangling reference. The module is also a small
Sphinx extension (``extra_extensions: [gi_lib.book]``) that keeps every page
free of scripts and stylesheets loaded from the internet.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gi_lib._io import atomic_write_text
from gi_lib.papers import PAPERS, Paper
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_RUN,
    NOT_TESTED,
    PAPERS_OWN,
    VERDICTS,
    paper_band,
    read_results,
    within_band,
)

GENERATED_DIR = "_generated"
SCORECARD_FILE = "scorecard.md"
SEED_TABLE_FILE = "seed_table.md"
TOC_FILE = "_toc.yml"
ROOT_PAGE = "intro"
# Notebook folder under notebooks/ -> its part of the table of contents, in order.
NOTEBOOK_PARTS = {
    "attacks": "Attacks",
    "defenses": "Defenses",
    "evaluation": "Evaluation",
}
HAND_WRITTEN_CAPTION = "Using the book"
# The hand-written pages of book/ after the notebooks (the root page comes first).
HAND_WRITTEN_PAGES = ("rerun", "adding-a-paper", "scorecard")
ASSETS_DIR = "assets"  # html_static_path in book/_config.yml; not "_static" (see below)
MATHJAX_DIR = "mathjax"
# CSS classes of book/assets/gi-book.css: the scorecard's rows, its claims
# and its summary, and the seed table.
SCORECARD_CLASS = "gi-scorecard"
CLAIMS_CLASS = "gi-claims"
SUMMARY_CLASS = "gi-summary"
SEED_TABLE_CLASS = "gi-seed-table"
TABLE_CLASSES = (SCORECARD_CLASS, CLAIMS_CLASS, SUMMARY_CLASS, SEED_TABLE_CLASS)
NO_INDEX_CLASS = "gi-no-index"  # a pandas table whose index column is hidden
DOWNLOADS_DIR = "downloads"  # SRC/downloads/<folder>/<name>.{py,ipynb}
RERUN_HEADING = "Run this page yourself"
RERUN_CELL_TAG = "gi-rerun"
NO_PAPER_VALUE = "— (none)"
CATEGORY_TITLES = {
    "attack": "Attacks",
    "plaintext defense": "Defenses for plaintext gradients",
    "encrypted aggregation": "Defenses that encrypt gradients",
    "evaluation": "Evaluation",
}
SCORECARD_COLUMNS = (
    "paper",
    "experiment",
    "metric",
    "paper's value",
    "ours",
    "within the paper's band",
    "profile",
    "note",
)
CLAIM_COLUMNS = ("the paper's claim", "where", "verdict here", "this run")
SUMMARY_COLUMNS = (
    "paper",
    "profile",
    "numbers within the paper's band",
    "outside it",
    "without a paper value",
    "paper's value not run here",
    "claims held",
    "not held",
    "not enough trials",
    "not tested",
)


@dataclass(frozen=True)
class Tally:
    """A results file counted: numbers against the paper's band, claims by verdict."""

    within: int
    outside: int
    no_value: int
    verdicts: dict[str, int]
    not_run: int = 0

    @property
    def claims(self) -> int:
        return sum(self.verdicts.values())

    @property
    def held(self) -> int:
        return self.verdicts.get(HOLDS, 0)


def tally(record: Mapping[str, Any]) -> Tally:
    """Count a results file's rows by :func:`gi_lib.results.within_band` and
    its claims by verdict."""
    rows = record.get("rows", [])
    bands = [within_band(row) for row in rows]
    not_run = [_not_run(row) for row in rows]
    verdicts = dict.fromkeys(VERDICTS, 0)
    for claim in record.get("claims", []):
        verdicts[claim["verdict"]] = verdicts.get(claim["verdict"], 0) + 1
    return Tally(
        within=sum(1 for b in bands if b is True),
        outside=sum(1 for b in bands if b is False),
        no_value=sum(
            1 for b, n in zip(bands, not_run, strict=True) if b is None and not n
        ),
        verdicts=verdicts,
        not_run=sum(not_run),
    )


def _not_run(row: Mapping[str, Any]) -> bool:
    """A row holding a paper's number this page does not reproduce."""
    return row.get("paper") is not None and row.get("ours") is None


class BookError(Exception):
    """A generated page cannot be written; the message says what to do."""


def notebook_pages(book_src: str | Path) -> dict[str, str]:
    """Notebook pages present in a book source: file stem -> docname.

    A docname is the page's path under the source without suffix, such as
    ``notebooks/attacks/dlg``.
    """
    root = Path(book_src)
    pages: dict[str, str] = {}
    for path in sorted((root / "notebooks").glob("**/*.ipynb")):
        if not path.name.startswith("."):
            pages[path.stem] = path.relative_to(root).with_suffix("").as_posix()
    return pages


def format_value(value: float | None, metric: str) -> str:
    """A number as the scorecard shows it: enough digits to compare, no more."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "— (no finite value)"
    if metric == "bytes":
        return f"{int(round(value)):,}"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _styled(table: str, css_class: str) -> str:
    """A Markdown table inside a container that book/assets/gi-book.css styles."""
    return f"```{{container}} {css_class}\n{table}\n```\n"


def _doc_link(docname: str, title: str) -> str:
    # An absolute docname resolves from the book root whichever page includes it.
    return f"{{doc}}`{title} </{docname}>`"


def _stem(record: Mapping[str, Any]) -> str:
    return str(record.get("notebook", "")).rsplit("/", 1)[-1]


def paper_for(stem: str, papers: Iterable[Paper] = PAPERS) -> Paper | None:
    """The seed-table paper whose notebook (or key) is named ``stem``."""
    for entry in papers:
        if entry.key == stem or (
            entry.notebook and entry.notebook.endswith(f"/{stem}")
        ):
            return entry
    return None


def _ordered(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records in seed-table order, then any others by notebook name."""
    order = {paper.key: index for index, paper in enumerate(PAPERS)}

    def rank(record: Mapping[str, Any]) -> tuple[int, str]:
        found = paper_for(_stem(record))
        return (order[found.key] if found else len(order), _stem(record))

    return sorted(records, key=rank)


def scorecard_markdown(
    records: Sequence[Mapping[str, Any]],
    *,
    pages: Mapping[str, str],
    heading_level: int = 2,
) -> str:
    """MyST Markdown of the scorecard: one section and table per results file.

    Args:
        records: results files as read by :func:`gi_lib.results.read_results`.
        pages: notebook stem -> docname of the pages in the book (links are
            written only to these).
        heading_level: Markdown level of each notebook's heading.

    Returns:
        The Markdown text.
    """
    if not records:
        return (
            "No results files were found, so there is nothing to compare yet: "
            "run `make notebooks`, then `make book`.\n"
        )
    hashes = "#" * heading_level
    parts: list[str] = [
        f"{hashes} At a glance\n",
        "A number is within the paper's band when it lies within the band "
        "given in its row (by default, per metric: 2 dB of PSNR, 0.02 of test "
        "accuracy, 0.05 of label accuracy, 5% of epsilon). A claim holds only "
        "when the run's interval clears it; with the difference inside the "
        "trial-to-trial spread the verdict is *not enough trials*.\n",
        scorecard_summary_markdown(records, pages=pages),
    ]
    for record in _ordered(records):
        stem = _stem(record)
        paper = paper_for(stem)
        name = paper.name if paper else stem
        profile = str(record.get("profile", "?"))
        environment = record.get("environment", {}) or {}
        facts = [
            _doc_link(pages[stem], "the notebook")
            if stem in pages
            else f"notebook `{stem}` (not in this build)",
            f"profile `{profile}`",
        ]
        if environment.get("device"):
            facts.append(f"device `{environment['device']}`")
        if record.get("wall_seconds") is not None:
            facts.append(f"{float(record['wall_seconds']):.1f} s")
        if environment.get("torch"):
            facts.append(f"torch {environment['torch']}")
        parts.append(f"{hashes} {name}\n")
        parts.append("Results of " + ", ".join(facts) + ".\n")
        if profile == "smoke":
            parts.append(
                "The smoke profile only proves that the pipeline runs; its "
                "numbers are not a replication.\n"
            )
        rows = record.get("rows", [])
        if not rows:
            parts.append("This results file has no rows.\n")
            continue
        table = [
            "| " + " | ".join(SCORECARD_COLUMNS) + " |",
            "|" + "---|" * len(SCORECARD_COLUMNS),
        ]
        for row in rows:
            metric = str(row.get("metric", ""))
            cells = (
                name,
                row.get("experiment", ""),
                metric,
                _paper_cell(row),
                NOT_RUN if _not_run(row) else format_value(row.get("ours"), metric),
                _band_cell(row),
                profile,
                row.get("note", ""),
            )
            table.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        parts.append(_styled("\n".join(table), SCORECARD_CLASS))
        parts.append(_claims_markdown(record.get("claims", [])))
    return "\n".join(parts)


def _paper_cell(row: Mapping[str, Any]) -> str:
    """The paper's value with its source and how it was read; S and F values
    say that they are not the paper's own."""
    if row.get("paper") is None:
        return NO_PAPER_VALUE
    text = format_value(row["paper"], str(row.get("metric", "")))
    label = row.get("paper_confidence") or "?"
    own = "" if label in PAPERS_OWN else ", not the paper's own"
    return f"{text} ({row.get('paper_source', '')}; {label}{own})"


def _band_cell(row: Mapping[str, Any]) -> str:
    inside = within_band(row)
    if inside is None:
        return "—"
    low, high = paper_band(row) or (math.nan, math.nan)
    metric = str(row.get("metric", ""))
    return (
        f"{'yes' if inside else 'no'} "
        f"({format_value(low, metric)} to {format_value(high, metric)})"
    )


def _claims_markdown(claims: Sequence[Mapping[str, Any]]) -> str:
    if not claims:
        return "This results file checks none of the paper's claims.\n"
    table = [
        "| " + " | ".join(CLAIM_COLUMNS) + " |",
        "|" + "---|" * len(CLAIM_COLUMNS),
    ]
    for claim in claims:
        cells = (claim["claim"], claim["source"], claim["verdict"], claim["evidence"])
        table.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "The paper's claims, checked by this run:\n\n" + _styled(
        "\n".join(table), CLAIMS_CLASS
    )


def scorecard_summary_markdown(
    records: Sequence[Mapping[str, Any]], *, pages: Mapping[str, str]
) -> str:
    """One line per results file: its numbers against the paper's band and its
    claims by verdict, linked to its page."""
    if not records:
        return ""
    table = [
        "| " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|" + "---|" * len(SUMMARY_COLUMNS),
    ]
    for record in _ordered(records):
        stem = _stem(record)
        paper = paper_for(stem)
        name = paper.name if paper else stem
        if stem in pages:
            name = _doc_link(pages[stem], name)
        t = tally(record)
        cells = (
            name,
            str(record.get("profile", "?")),
            t.within,
            t.outside,
            t.no_value,
            t.not_run,
            t.held,
            t.verdicts.get(DOES_NOT_HOLD, 0),
            t.verdicts.get(NOT_ENOUGH_TRIALS, 0),
            t.verdicts.get(NOT_TESTED, 0),
        )
        table.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return _styled("\n".join(table), SUMMARY_CLASS)


def seed_table_markdown(
    papers: Iterable[Paper] = PAPERS,
    *,
    pages: Iterable[str] = (),
    records: Sequence[Mapping[str, Any]] = (),
    heading_level: int = 3,
) -> str:
    """MyST Markdown of the seed list of papers, grouped by category.

    Args:
        papers: the registry, normally :data:`gi_lib.papers.PAPERS`.
        pages: docnames present in the book (``notebooks/attacks/dlg``); a
            paper's notebook is linked only when its page is among them.
        records: results files; each paper's row says how many of the
            claims its page checks hold in its run.
        heading_level: Markdown level of each category heading.
    """
    present = set(pages)
    held: dict[str, str] = {}
    for record in records:
        found = paper_for(_stem(record))
        if found is not None:
            t = tally(record)
            held[found.key] = f"{t.held} of {t.claims} ({record.get('profile', '?')})"
    by_category: dict[str, list[Paper]] = {}
    for entry in papers:
        if entry.seed:  # the book's own pages are not papers of the seed list
            by_category.setdefault(entry.category, []).append(entry)
    categories = [c for c in CATEGORY_TITLES if c in by_category]
    categories += sorted(c for c in by_category if c not in CATEGORY_TITLES)
    hashes = "#" * heading_level
    parts: list[str] = []
    for category in categories:
        entries = by_category[category]
        side = any(entry.side_information for entry in entries)
        columns = ["paper", "title", "venue"]
        columns += ["what the attacker knows besides the update"] if side else []
        columns += ["status", "claims held here"]
        title = CATEGORY_TITLES.get(category, category.capitalize())
        lines = [
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for entry in entries:
            status = entry.status
            if entry.notebook:
                docname = f"notebooks/{entry.notebook}"
                if docname in present:
                    status += ": " + _doc_link(docname, "notebook")
                else:
                    status += f" (notebook `{entry.notebook}` not in this build)"
            cells = [entry.name, entry.title, entry.venue]
            cells += [entry.side_information or "—"] if side else []
            cells += [status, held.get(entry.key, "—")]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        parts.append(f"{hashes} {title}\n")
        parts.append(_styled("\n".join(lines), SEED_TABLE_CLASS))
    return "\n".join(parts)


def table_of_contents(
    papers: Iterable[Paper] = PAPERS, *, pages: Iterable[str] = ()
) -> dict[str, Any]:
    """The book's table of contents (Jupyter Book's ``_toc.yml`` as a dict).

    Args:
        papers: the registry, normally :data:`gi_lib.papers.PAPERS`; its order
            is the order of the notebooks within each part.
        pages: docnames of the notebook pages present in the book
            (``notebooks/attacks/dlg``); only these are listed.

    Returns:
        ``{"format": "jb-book", "root": ..., "parts": [...]}``: one part per
        folder of :data:`NOTEBOOK_PARTS` that has a page, then the hand-written
        pages under :data:`HAND_WRITTEN_CAPTION`.

    Raises:
        BookError: a notebook page has no ``PAPERS`` entry, or lies in a folder
            that is not a part of the book.
    """
    present = set(pages)
    listed = [f"notebooks/{entry.notebook}" for entry in papers if entry.notebook]
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise BookError(
            f"The notebook page(s) {', '.join(unlisted)} have no entry in "
            'gi_lib.papers.PAPERS. Add one (with notebook="<folder>/<name>"): '
            "the table of contents and the seed table follow from it."
        )
    chapters: dict[str, list[dict[str, str]]] = {f: [] for f in NOTEBOOK_PARTS}
    for docname in dict.fromkeys(listed):  # in PAPERS order, each page once
        if docname not in present:
            continue
        folder = docname.split("/")[1]
        if folder not in chapters:
            raise BookError(
                f"{docname} lies in notebooks/{folder}/, which is not a part of the "
                f"book; notebooks live in {', '.join(NOTEBOOK_PARTS)} "
                "(gi_lib.book.NOTEBOOK_PARTS)."
            )
        chapters[folder].append({"file": docname})
    parts = [
        {"caption": caption, "chapters": chapters[folder]}
        for folder, caption in NOTEBOOK_PARTS.items()
        if chapters[folder]
    ]
    parts.append(
        {
            "caption": HAND_WRITTEN_CAPTION,
            "chapters": [{"file": name} for name in HAND_WRITTEN_PAGES],
        }
    )
    return {"format": "jb-book", "root": ROOT_PAGE, "parts": parts}


def toc_files(toc: Mapping[str, Any]) -> list[str]:
    """Every page of a table of contents, root first, in reading order."""
    files = [str(toc["root"])]
    for part in toc.get("parts", []):
        files += [str(chapter["file"]) for chapter in part.get("chapters", [])]
    return files


def toc_yaml(toc: Mapping[str, Any]) -> str:
    """``_toc.yml`` text: a header that says where it comes from, then the YAML."""
    header = (
        "# Generated by gi_lib.book from gi_lib.papers.PAPERS when the book is\n"
        "# built; do not edit. A paper's notebook joins the book through its\n"
        "# PAPERS entry; hand-written pages are gi_lib.book.HAND_WRITTEN_PAGES.\n"
    )
    return header + yaml.safe_dump(dict(toc), sort_keys=False)


def mathjax_source() -> Path:
    """MathJax 2 as shipped by the ``jupyter_server_mathjax`` package."""
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or spec.origin is None:
        raise BookError(
            "jupyter-server-mathjax is not installed; it ships the MathJax the book "
            "serves locally. Install it: pip install -r requirements.txt."
        )
    static = Path(spec.origin).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise BookError(
            f"MathJax.js is missing from {static}; reinstall jupyter-server-mathjax."
        )
    return static


def copy_mathjax(book_src: str | Path) -> Path:
    """Copy MathJax into ``<book_src>/assets/mathjax`` and return that folder.

    The folder is deliberately not ``_static``: Jupyter Book 1 adds every
    script found in a book's ``_static`` to every page, which would load all of
    MathJax's extensions by hand. ``assets`` is listed in ``html_static_path``
    instead, and ``mathjax_path`` points at ``mathjax/MathJax.js`` in it.
    """
    target = Path(book_src) / ASSETS_DIR / MATHJAX_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(mathjax_source(), target)
    return target


_DATAFRAME_TABLE = re.compile(r'<table border="1" class="dataframe">.*?</table>', re.S)
_BODY_ROW_HEAD = re.compile(r"<tr>\s*<th>(\d+)</th>")


def mark_default_index(html: str) -> str:
    """Mark pandas tables whose index is the default 0, 1, 2, ... (which says
    nothing) with :data:`NO_INDEX_CLASS`, so the book's CSS hides that column.

    A table with a named or otherwise meaningful index is left alone, as is
    one written with ``index=False``.
    """

    def mark(match: re.Match[str]) -> str:
        table = match.group(0)
        body = table.split("<tbody>", 1)[-1] if "<tbody>" in table else ""
        rows = body.count("<tr>")
        heads = [int(number) for number in _BODY_ROW_HEAD.findall(body)]
        if rows == 0 or heads != list(range(rows)):
            return table
        return table.replace(
            'class="dataframe"', f'class="dataframe {NO_INDEX_CLASS}"', 1
        )

    return _DATAFRAME_TABLE.sub(mark, html)


def _parameter_value(value: Any) -> str:
    """A parameter as ``-p NAME VALUE`` takes it: a list as one comma-separated
    string, anything else as YAML reads it back."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def rerun_markdown(
    docname: str, record: Mapping[str, Any] | None, *, has_source: bool = True
) -> str:
    """The "Run this page yourself" section of a notebook page.

    Args:
        docname: the page, e.g. ``notebooks/attacks/dlg``.
        record: its results file (profile, parameters, wall time), if any.
        has_source: whether the notebook's ``.py`` source is offered too.

    Returns:
        MyST Markdown: download links, the run's profile and parameters, and
        the command that reruns the page with another parameter.
    """
    key = docname.split("/", 1)[1]  # attacks/dlg
    name = key.rsplit("/", 1)[-1]
    downloads = f"/{DOWNLOADS_DIR}/{key}"
    offered = [f"the executed notebook, {{download}}`{name}.ipynb <{downloads}.ipynb>`"]
    if has_source:
        offered.insert(
            0,
            f"its source, {{download}}`{name}.py <{downloads}.py>` (a "
            "[jupytext](https://jupytext.readthedocs.io) notebook: open it in "
            "Jupyter, or run it as below)",
        )
    parts = [
        f"## {RERUN_HEADING}\n",
        "Download " + ", or ".join(offered) + ".\n",
    ]
    record = record or {}
    parameters = {
        param: value
        for param, value in (record.get("parameters") or {}).items()
        if param != "profile"
    }
    profile = str(record.get("profile") or "cpu")
    if record:
        facts = [f"the `{profile}` profile"]
        if record.get("wall_seconds") is not None:
            facts.append(f"{float(record['wall_seconds']):.1f} s (wall time)")
        environment = record.get("environment") or {}
        if environment.get("device"):
            facts.append(f"device `{environment['device']}`")
        if environment.get("torch"):
            facts.append(f"torch {environment['torch']}")
        parts.append("This run: " + ", ".join(facts) + ".\n")
    if parameters:
        rows = ["| parameter | value |", "|---|---|"]
        rows += [
            f"| `{_cell(param)}` | `{_cell(_parameter_value(value))}` |"
            for param, value in parameters.items()
        ]
        parts.append(
            f":::{{dropdown}} Its {len(parameters)} parameters\n"
            + "\n".join(rows)
            + "\n:::\n"
        )
    seed = parameters.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        example = f"-p seed {seed + 1}"
        what = "this command reruns it with another seed"
    else:
        example, what = "-p NAME VALUE", "for example"
    parts.append(
        "To rerun it with other parameters, from a clone of the repository "
        "(`pip install -r requirements.txt -e .`), give each one as "
        f"`-p NAME VALUE`; {what}:\n"
    )
    parts.append(
        "```bash\n"
        f"python -m gi_lib.runner notebooks/{key}.py --profile {profile} {example} \\\n"
        f"    --output my-runs/{name}.ipynb --results-dir my-runs/results\n"
        "```\n"
    )
    parts.append(
        f"`make {name} PROFILE={profile}` reruns it exactly as here; "
        "{doc}`/rerun` says more.\n"
    )
    return "\n".join(parts)


def prepare_notebook_pages(
    book_src: str | Path,
    records: Sequence[Mapping[str, Any]],
    *,
    sources: str | Path | None = None,
) -> list[Path]:
    """Offer each notebook page's files for download and end it with
    :func:`rerun_markdown`; mark its default-index tables.

    The executed notebook is copied to ``SRC/downloads/`` as it ran, before
    the page itself gets its extra cell; its ``.py`` source is copied from
    ``sources`` (the repository's ``notebooks/`` folder) when it is there.

    Returns:
        The files written.
    """
    import nbformat

    root = Path(book_src)
    by_stem = {_stem(record): record for record in records}
    written: list[Path] = []
    for stem, docname in notebook_pages(root).items():
        key = docname.split("/", 1)[1]
        page = root / f"{docname}.ipynb"
        target = root / DOWNLOADS_DIR / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target.with_suffix(".ipynb"))
        written.append(target.with_suffix(".ipynb"))
        source = Path(sources) / f"{key}.py" if sources is not None else None
        has_source = source is not None and source.is_file()
        if has_source:
            shutil.copyfile(source, target.with_suffix(".py"))
            written.append(target.with_suffix(".py"))
        notebook = nbformat.read(page, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                # Shown outputs, and the ones glued into the page's text
                # (application/papermill.record/text/html).
                data = output.get("data", {})
                for mime, html in data.items():
                    if mime.endswith("text/html"):
                        text = html if isinstance(html, str) else "".join(html)
                        data[mime] = mark_default_index(text)
        notebook.cells.append(
            nbformat.v4.new_markdown_cell(
                rerun_markdown(docname, by_stem.get(stem), has_source=has_source),
                metadata={"tags": [RERUN_CELL_TAG]},
            )
        )
        nbformat.write(notebook, page)
        written.append(page)
    return written


def generate(
    results_dir: str | Path,
    out: str | Path,
    *,
    expect: Iterable[str] = (),
    mathjax: bool = True,
    sources: str | Path | None = None,
) -> list[Path]:
    """Write the table of contents, the generated pages (and MathJax) into ``out``.

    Args:
        results_dir: folder of results files.
        out: the assembled book source.
        expect: notebook names that must have a results file.
        mathjax: also copy MathJax into the book's static files.
        sources: the repository's ``notebooks/`` folder, whose ``.py``
            sources each page offers for download (see
            :func:`prepare_notebook_pages`).

    Returns:
        The files and folders written.

    Raises:
        BookError: an expected notebook has no results file, or a notebook
            page has no ``PAPERS`` entry.
    """
    out = Path(out)
    records = read_results(results_dir) if Path(results_dir).is_dir() else []
    missing = sorted(set(expect) - {_stem(record) for record in records})
    if missing:
        raise BookError(
            f"No results file for {', '.join(missing)} in {results_dir}, though "
            "the executed notebook exists (was the results file deleted by hand?). "
            "Remove that notebook's executed .ipynb or run `make clean`, then "
            "build again."
        )
    pages = notebook_pages(out)
    toc = table_of_contents(PAPERS, pages=pages.values())
    written = [
        atomic_write_text(out / TOC_FILE, toc_yaml(toc)),
        atomic_write_text(
            out / GENERATED_DIR / SCORECARD_FILE,
            scorecard_markdown(records, pages=pages),
        ),
        atomic_write_text(
            out / GENERATED_DIR / SEED_TABLE_FILE,
            seed_table_markdown(PAPERS, pages=pages.values(), records=records),
        ),
    ]
    written += prepare_notebook_pages(out, records, sources=sources)
    if mathjax:
        written.append(copy_mathjax(out))
    return written


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("//")


def _keep_pages_offline(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Sphinx hook: no page may load a script or stylesheet from the internet.

    sphinx-thebe (always loaded by Jupyter Book 1) adds a script that would
    fetch thebe from a CDN when a launch button is pressed; the book has no
    launch buttons, so it is dropped. Any other remote asset is a warning,
    which the strict build turns into a failure.
    """
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if not assets:
            continue
        kept = []
        for asset in assets:
            filename = str(getattr(asset, "filename", asset) or "")
            body = str(getattr(asset, "attributes", {}).get("body", ""))
            if filename.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body:
                continue
            if _is_remote(filename):
                logger.warning(
                    "page %s loads %s from the internet; the book must read "
                    "offline (serve the file from the book's assets instead)",
                    pagename,
                    filename,
                )
            kept.append(asset)
        # The template reads the builder's own list: change it in place.
        assets[:] = kept


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point (``extra_extensions: [gi_lib.book]``)."""
    app.connect("html-page-context", _keep_pages_offline, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gi_lib.book",
        description=(
            "Write the table of contents, the scorecard and the seed table into "
            "a book source."
        ),
    )
    parser.add_argument("--results-dir", required=True, help="folder of results JSON")
    parser.add_argument("--out", required=True, help="the assembled book source")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="NAME",
        help="a notebook that must have a results file (repeatable)",
    )
    parser.add_argument("--no-mathjax", action="store_true", help="do not copy MathJax")
    parser.add_argument(
        "--sources",
        help="the notebooks/ folder: each page offers its .py source for download",
    )
    args = parser.parse_args(argv)
    try:
        written = generate(
            args.results_dir,
            args.out,
            expect=args.expect,
            mathjax=not args.no_mathjax,
            sources=args.sources,
        )
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
