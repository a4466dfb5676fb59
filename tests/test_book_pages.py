"""The generated book pages (scorecard, seed table) and the book's configuration."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from gi_lib import book
from gi_lib.papers import PAPERS, Paper
from gi_lib.results import (
    Claim,
    PaperValue,
    ResultRow,
    paired_claim,
    read_results,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_CATEGORIES = ("attacks", "defenses", "evaluation")


def _fake_results(folder: Path) -> None:
    write_results(
        "dlg",
        profile="smoke",
        parameters={"seed": 0},
        rows=[
            ResultRow.against("mnist/lenet/bs1", "psnr", 41.234, None, note="a | b"),
            ResultRow.against(
                "cifar10/lenet/bs1",
                "label_accuracy",
                1.0,
                PaperValue(0.89, "Table 1", "P"),
            ),
            ResultRow.against(
                "cifar10/lenet/bs4",
                "label_accuracy",
                0.9,
                PaperValue(0.89, "Table 1", "P"),
            ),
        ],
        claims=[
            paired_claim(
                "A beats B",
                "Sec. 4",
                [20.0, 21.0, 22.0, 23.0],
                [10.0, 11.5, 12.0, 12.5],
                names=("A", "B"),
            ),
            Claim("C is slow", "Sec. 5", "not tested", "no timing at this profile"),
        ],
        wall_seconds=12.5,
        device="cpu",
        directory=folder,
    )
    write_results(
        "idlg",
        profile="cpu",
        parameters={"seed": 0},
        rows=[
            ResultRow.against(
                "lfw/lenet/bs1", "mse", 2e-5, PaperValue(1e-4, "Fig. 2", "S")
            )
        ],
        wall_seconds=3.0,
        directory=folder,
    )


def _fake_book_src(
    folder: Path, notebooks: tuple[str, ...], *, outputs: tuple[str, ...] = ()
) -> Path:
    """Executed notebooks as the build copies them: one code cell whose
    outputs are the HTML snippets ``outputs``."""
    import nbformat

    for key in notebooks:
        page = folder / "notebooks" / f"{key}.ipynb"
        page.parent.mkdir(parents=True, exist_ok=True)
        cell = nbformat.v4.new_code_cell(
            "rows_frame(rows)",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result", data={"text/html": html}, execution_count=1
                )
                for html in outputs
            ]
            + [
                nbformat.v4.new_output(
                    "display_data",
                    data={"application/papermill.record/text/html": html},
                )
                for html in outputs
            ],
        )
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), page)
    return folder


def _table_rows(markdown: str, width: int | None = None) -> list[list[str]]:
    """The cells of every Markdown table row (of ``width`` cells if given)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            if width is None or len(cells) == width:
                rows.append(cells)
    return rows


# --- the scorecard ----------------------------------------------------------


def test_scorecard_has_one_table_per_notebook_with_the_columns(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(
        read_results(tmp_path), pages={"dlg": "notebooks/attacks/dlg"}
    )
    header = "| " + " | ".join(book.SCORECARD_COLUMNS) + " |"
    assert text.count(header) == 2
    assert text.count("| " + " | ".join(book.CLAIM_COLUMNS) + " |") == 1
    assert "checks none of the paper's claims" in text  # iDLG's file has none
    assert "## DLG" in text and "## iDLG" in text
    # Seed-table order: DLG before iDLG.
    assert text.index("## DLG") < text.index("## iDLG")


def test_scorecard_rows_show_paper_value_ours_profile_and_note(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(read_results(tmp_path), pages={})
    width = len(book.SCORECARD_COLUMNS)
    rows = {row[1]: row for row in _table_rows(text, width) if row[0] != "paper"}
    assert rows["mnist/lenet/bs1"] == [
        "DLG",
        "mnist/lenet/bs1",
        "psnr",
        "— (none)",
        "41.23",
        "—",
        "smoke",
        "a \\| b",
    ]
    assert rows["cifar10/lenet/bs1"][3] == "0.89 (Table 1; P)"
    assert rows["cifar10/lenet/bs1"][4:6] == ["1", "no (0.84 to 0.94)"]
    assert rows["cifar10/lenet/bs4"][4:6] == ["0.9", "yes (0.84 to 0.94)"]
    # A third party's quote is labelled as not the paper's own number.
    assert rows["lfw/lenet/bs1"][3:7] == [
        "1.000e-04 (Fig. 2; S, not the paper's own)",
        "2.000e-05",
        "no (5.000e-05 to 2.000e-04)",
        "cpu",
    ]


def test_scorecard_shows_each_claim_with_its_verdict(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(read_results(tmp_path), pages={})
    claims = {row[0]: row for row in _table_rows(text, len(book.CLAIM_COLUMNS))}
    assert claims["A beats B"][1:3] == ["Sec. 4", "holds"]
    assert "paired difference" in claims["A beats B"][3]
    assert claims["C is slow"][2:] == ["not tested", "no timing at this profile"]


def test_scorecard_summary_counts_numbers_and_claims(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(
        read_results(tmp_path), pages={"dlg": "notebooks/attacks/dlg"}
    )
    summary = _table_rows(text, len(book.SUMMARY_COLUMNS))
    assert summary[0] == list(book.SUMMARY_COLUMNS)
    assert summary[1] == [
        "{doc}`DLG </notebooks/attacks/dlg>`",
        "smoke",
        "1",  # within the band
        "1",  # outside it
        "1",  # no paper value
        "0",  # a paper value not run here
        "1",  # held
        "0",
        "0",
        "1",  # not tested
    ]
    assert summary[2][0] == "iDLG" and summary[2][2:5] == ["0", "1", "0"]


def test_a_paper_value_not_run_here_is_shown_and_counted(tmp_path: Path) -> None:
    paper = PaperValue(0.9, "Table 2", "P")
    rows = [
        ResultRow.not_run("cifar10/x", "ssim", paper, "the decode attack is not run"),
        ResultRow.against("cifar10/y", "ssim", 0.5, None),
    ]
    write_results(
        "dlg",
        profile="cpu",
        parameters={},
        rows=rows,
        wall_seconds=1.0,
        directory=tmp_path,
    )
    record = read_results(tmp_path)[0]
    t = book.tally(record)
    assert (t.within, t.outside, t.no_value, t.not_run) == (0, 0, 1, 1)
    text = book.scorecard_markdown([record], pages={})
    shown = {row[1]: row for row in _table_rows(text, len(book.SCORECARD_COLUMNS))}
    assert shown["cifar10/x"][4] == "not run here"
    assert shown["cifar10/x"][7] == "not run here: the decode attack is not run"
    with pytest.raises(ValueError, match="why"):
        ResultRow.not_run("cifar10/x", "ssim", paper, "")


def test_scorecard_says_when_a_paper_gives_no_value(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(read_results(tmp_path), pages={})
    assert book.NO_PAPER_VALUE == "— (none)"
    assert text.count(book.NO_PAPER_VALUE) == 1


def test_scorecard_links_only_notebook_pages_that_exist(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.scorecard_markdown(
        read_results(tmp_path), pages={"dlg": "notebooks/attacks/dlg"}
    )
    assert "{doc}`the notebook </notebooks/attacks/dlg>`" in text
    assert "</notebooks/attacks/idlg>" not in text
    assert "notebook `idlg` (not in this build)" in text


def test_scorecard_flags_smoke_numbers_and_handles_no_results() -> None:
    record = {"notebook": "dlg", "profile": "smoke", "rows": []}
    text = book.scorecard_markdown([record], pages={})
    assert "not a replication" in text
    assert "no rows" in text
    assert "make notebooks" in book.scorecard_markdown([], pages={})


@pytest.mark.parametrize(
    ("value", "metric", "shown"),
    [
        (41.2345, "psnr", "41.23"),
        (0.9, "label_accuracy", "0.9"),
        (1.5e-5, "mse", "1.500e-05"),
        (123456.0, "bytes", "123,456"),
        (0.0, "mse", "0"),
        (None, "psnr", "— (no finite value)"),
    ],
)
def test_format_value(value: float | None, metric: str, shown: str) -> None:
    assert book.format_value(value, metric) == shown


# --- the seed table ---------------------------------------------------------


def test_seed_table_lists_every_paper_by_category() -> None:
    text = book.seed_table_markdown(PAPERS, pages=[])
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [
        "### Attacks",
        "### Defenses for plaintext gradients",
        "### Defenses that encrypt gradients",
        "### Evaluation",
    ]
    names = [row[0] for row in _table_rows(text) if row[0] != "paper"]
    assert names == [paper.name for paper in PAPERS if paper.seed]


def test_a_page_of_the_books_own_is_in_the_contents_but_not_the_seed_table() -> None:
    own = Paper(
        "leakage",
        "What aggregation leaks",
        "An evaluation of this book's own",
        "this book",
        "evaluation",
        "",
        "evaluation/leakage",
        seed=False,
    )
    pages = ["notebooks/evaluation/leakage"]
    text = book.seed_table_markdown((*PAPERS, own), pages=pages)
    assert "What aggregation leaks" not in text
    toc = book.table_of_contents((*PAPERS, own), pages=pages)
    assert "notebooks/evaluation/leakage" in book.toc_files(toc)


def test_seed_table_links_notebooks_present_and_shows_status() -> None:
    text = book.seed_table_markdown(PAPERS, pages=["notebooks/attacks/dlg"])
    rows = {row[0]: row for row in _table_rows(text)}
    assert rows["DLG"][-2] == "supported: {doc}`notebook </notebooks/attacks/dlg>`"
    assert rows["iDLG"][-2] == "supported (notebook `attacks/idlg` not in this build)"
    # Every paper's status follows from its entry: planned until it has a notebook.
    for paper in (p for p in PAPERS if p.seed):
        status = rows[paper.name][-2]
        if paper.notebook is None:
            assert status == "planned", paper.key
        else:
            assert status.startswith("supported"), paper.key


def test_a_paper_without_a_notebook_is_planned() -> None:
    planned = Paper("new", "New", "A new paper", "2025", "attack", "", None)
    text = book.seed_table_markdown((*PAPERS, planned), pages=[])
    rows = {row[0]: row for row in _table_rows(text)}
    assert rows["New"][-2:] == ["planned", "—"]


def test_seed_table_says_how_many_claims_hold(tmp_path: Path) -> None:
    _fake_results(tmp_path)
    text = book.seed_table_markdown(PAPERS, records=read_results(tmp_path))
    rows = {row[0]: row for row in _table_rows(text)}
    assert rows["DLG"][-1] == "1 of 2 (smoke)"
    assert rows["iDLG"][-1] == "0 of 0 (cpu)"
    assert rows["R-GAP"][-1] == "—"


def test_generate_writes_pages_toc_and_mathjax(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _fake_results(results)
    src = _fake_book_src(tmp_path / "src", ("attacks/dlg", "attacks/idlg"))
    book.generate(results, src, expect=["dlg", "idlg"])
    scorecard = (src / "_generated" / "scorecard.md").read_text(encoding="utf-8")
    seed_table = (src / "_generated" / "seed_table.md").read_text(encoding="utf-8")
    assert "</notebooks/attacks/idlg>" in scorecard
    assert "</notebooks/attacks/idlg>" in seed_table
    assert (src / "assets" / "mathjax" / "MathJax.js").is_file()
    toc_text = (src / "_toc.yml").read_text(encoding="utf-8")
    assert toc_text.startswith("# Generated by gi_lib.book")
    toc = yaml.safe_load(toc_text)
    assert book.toc_files(toc) == [
        "intro",
        "notebooks/attacks/dlg",
        "notebooks/attacks/idlg",
        *book.HAND_WRITTEN_PAGES,
    ]


def test_generate_fails_on_a_notebook_page_without_a_paper(tmp_path: Path) -> None:
    src = _fake_book_src(tmp_path / "src", ("attacks/dlg", "attacks/mystery"))
    with pytest.raises(book.BookError, match="notebooks/attacks/mystery.*PAPERS"):
        book.generate(tmp_path / "results", src, mathjax=False)


def test_generate_fails_when_an_expected_results_file_is_missing(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    _fake_results(results)
    with pytest.raises(book.BookError, match="No results file for pgd"):
        book.generate(results, tmp_path / "src", expect=["dlg", "pgd"], mathjax=False)


def test_cli_reports_a_missing_results_file(tmp_path: Path, capsys) -> None:
    code = book.main(
        ["--results-dir", str(tmp_path), "--out", str(tmp_path), "--expect", "dlg"]
    )
    assert code == 1
    assert "No results file for dlg" in capsys.readouterr().err


# --- offline pages ----------------------------------------------------------


def test_offline_hook_drops_thebe_and_warns_on_remote_assets(caplog) -> None:
    def asset(filename: str | None, body: str = "") -> SimpleNamespace:
        return SimpleNamespace(filename=filename, attributes={"body": body})

    scripts = [
        asset("_static/doctools.js"),
        asset(None, body='const THEBE_JS_URL = "https://unpkg.com/thebe"'),
        asset("sphinx-thebe.js"),
        asset("https://cdn.example.org/x.js"),
        asset("mathjax/MathJax.js"),
    ]
    context = {"script_files": scripts, "css_files": []}
    book._keep_pages_offline(None, "intro", "page.html", context, None)
    kept = [script.filename for script in context["script_files"]]
    assert kept == [
        "_static/doctools.js",
        "https://cdn.example.org/x.js",
        "mathjax/MathJax.js",
    ]
    assert context["script_files"] is scripts  # changed in place
    assert "cdn.example.org" in caplog.text


# --- the book's configuration -----------------------------------------------


def _notebook_keys() -> list[str]:
    return sorted(
        path.relative_to(ROOT / "notebooks").with_suffix("").as_posix()
        for category in NOTEBOOK_CATEGORIES
        for path in (ROOT / "notebooks" / category).glob("*.py")
    )


def _book_toc() -> dict:
    """The table of contents the build generates for this repository."""
    pages = [f"notebooks/{key}" for key in _notebook_keys()]
    return book.table_of_contents(PAPERS, pages=pages)


def test_toc_lists_every_notebook_in_papers_order_between_the_fixed_pages() -> None:
    toc = _book_toc()
    assert toc["format"] == "jb-book" and toc["root"] == "intro"
    captions = [part["caption"] for part in toc["parts"]]
    assert captions == [*book.NOTEBOOK_PARTS.values(), book.HAND_WRITTEN_CAPTION]
    notebooks = [f"notebooks/{p.notebook}" for p in PAPERS if p.notebook]
    files = book.toc_files(toc)
    assert files == ["intro", *notebooks, *book.HAND_WRITTEN_PAGES]
    for part in toc["parts"][:-1]:
        folder = {v: k for k, v in book.NOTEBOOK_PARTS.items()}[part["caption"]]
        for chapter in part["chapters"]:
            assert chapter["file"].startswith(f"notebooks/{folder}/")


def test_toc_hand_written_pages_are_the_pages_of_book() -> None:
    pages = {path.stem for path in (ROOT / "book").glob("*.md")}
    assert pages == {book.ROOT_PAGE, *book.HAND_WRITTEN_PAGES}
    # The toc is generated; a committed one would be overwritten at build time.
    assert not (ROOT / "book" / book.TOC_FILE).exists()


def test_toc_lists_only_pages_present_and_each_once() -> None:
    twice = Paper("dlg_again", "DLG again", "t", "v", "attack", "", "attacks/dlg")
    toc = book.table_of_contents((*PAPERS, twice), pages=["notebooks/attacks/dlg"])
    assert book.toc_files(toc) == [
        "intro",
        "notebooks/attacks/dlg",
        *book.HAND_WRITTEN_PAGES,
    ]


def test_toc_rejects_a_notebook_outside_the_parts() -> None:
    odd = Paper("odd", "Odd", "t", "v", "attack", "", "extras/odd")
    with pytest.raises(book.BookError, match="notebooks/extras/.*NOTEBOOK_PARTS"):
        book.table_of_contents((odd,), pages=["notebooks/extras/odd"])


def test_notebook_folders_are_the_toc_parts() -> None:
    assert tuple(book.NOTEBOOK_PARTS) == NOTEBOOK_CATEGORIES


def test_every_notebook_has_a_paper_entry() -> None:
    listed = {paper.notebook for paper in PAPERS if paper.notebook}
    missing = sorted(set(_notebook_keys()) - listed)
    assert not missing, f"notebooks without an entry in gi_lib.papers.PAPERS: {missing}"


def test_every_replicated_paper_has_its_notebook() -> None:
    for paper in PAPERS:
        if paper.notebook:
            assert (ROOT / "notebooks" / f"{paper.notebook}.py").is_file(), paper.key


def test_config_renders_offline_and_never_executes() -> None:
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "off"
    sphinx = config["sphinx"]["config"]
    assert "gi_lib.book" in config["sphinx"]["extra_extensions"]
    assert sphinx["html_static_path"] == [book.ASSETS_DIR]
    assert sphinx["mathjax_path"] == f"{book.MATHJAX_DIR}/MathJax.js"
    # The MathJax 2 combined configuration it names ships with the package.
    for name in sphinx["mathjax2_config"]["config"]:
        assert (book.mathjax_source() / "config" / name).is_file(), name
    # Jupyter Book 1 injects every script found in a book-source _static folder.
    assert not (ROOT / "book" / "_static").exists()


def test_profiles_name_only_existing_notebooks() -> None:
    keys = set(_notebook_keys())
    for path in sorted((ROOT / "notebooks" / "profiles").glob("*.yaml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        unknown = sorted(set(content) - keys)
        assert not unknown, f"{path.name} names notebooks that do not exist: {unknown}"
    names = {path.stem for path in (ROOT / "notebooks" / "profiles").glob("*.yaml")}
    assert {"smoke", "cpu", "paper"} <= names


def _frame_html(index: list[str] | None = None, *, show_index: bool = True) -> str:
    import pandas as pd

    frame = pd.DataFrame({"metric": ["psnr", "ssim"], "ours": [20.5, 0.7]})
    if index is not None:
        frame.index = index
    return frame.to_html(index=show_index)


def test_only_a_default_pandas_index_is_marked_for_hiding() -> None:
    default = book.mark_default_index(_frame_html())
    assert f'class="dataframe {book.NO_INDEX_CLASS}"' in default
    assert "psnr" in default and "<th>0</th>" in default  # hidden by CSS, not cut
    for kept in (
        _frame_html(["mnist", "cifar10"]),  # an index that says something
        _frame_html(["1", "2"]),  # numbers, but not the default 0, 1, ...
        _frame_html(show_index=False),
        "<p>no table</p>",
    ):
        assert book.mark_default_index(kept) == kept


def test_the_css_hides_marked_index_columns_and_scrolls_wide_tables() -> None:
    import re

    css = (ROOT / "book" / "assets" / "gi-book.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = {
        selector.strip(): body
        for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)
        for selector in selectors.split(",")
    }
    assert "display: none" in rules[f"table.{book.NO_INDEX_CLASS} tr > th:first-child"]
    for container in book.TABLE_CLASSES:
        assert "overflow-x: auto" in rules[f".{container}"], container


def test_rerun_section_offers_downloads_parameters_and_a_command() -> None:
    record = {
        "profile": "smoke",
        "parameters": {
            "profile": "smoke",
            "dataset": ["mnist", "cifar10"],
            "seed": 3,
            "success_psnr": 30.0,
        },
        "environment": {"device": "cpu", "torch": "2.4.0"},
        "wall_seconds": 12.34,
    }
    text = book.rerun_markdown("notebooks/attacks/dlg", record)
    assert text.startswith(f"## {book.RERUN_HEADING}")
    assert "{download}`dlg.py </downloads/attacks/dlg.py>`" in text
    assert "{download}`dlg.ipynb </downloads/attacks/dlg.ipynb>`" in text
    assert "the `smoke` profile, 12.3 s (wall time), device `cpu`" in text
    assert ":::{dropdown} Its 3 parameters" in text  # profile is not one of them
    assert "| `dataset` | `mnist,cifar10` |" in text  # as -p takes a list
    assert (
        "python -m gi_lib.runner notebooks/attacks/dlg.py --profile smoke -p seed 4"
    ) in text
    assert "make dlg PROFILE=smoke" in text
    bare = book.rerun_markdown("notebooks/attacks/dlg", None, has_source=False)
    assert "dlg.py" not in bare.split("```")[0] and "-p NAME VALUE" in bare


def test_generate_ends_each_page_with_its_rerun_section(tmp_path: Path) -> None:
    import nbformat

    results = tmp_path / "results"
    _fake_results(results)
    src = _fake_book_src(
        tmp_path / "src", ("attacks/dlg", "attacks/idlg"), outputs=(_frame_html(),)
    )
    sources = tmp_path / "notebooks"
    (sources / "attacks").mkdir(parents=True)
    (sources / "attacks" / "dlg.py").write_text("# %%\nprint(1)\n", encoding="utf-8")
    pristine = (src / "notebooks" / "attacks" / "dlg.ipynb").read_bytes()
    book.generate(results, src, expect=["dlg", "idlg"], mathjax=False, sources=sources)

    downloads = src / book.DOWNLOADS_DIR / "attacks"
    assert (downloads / "dlg.ipynb").read_bytes() == pristine  # as it ran
    assert (downloads / "dlg.py").read_text(encoding="utf-8").startswith("# %%")
    assert not (downloads / "idlg.py").exists()  # no source given for it
    page = nbformat.read(src / "notebooks" / "attacks" / "dlg.ipynb", as_version=4)
    last = page.cells[-1]
    assert last.cell_type == "markdown" and book.RERUN_CELL_TAG in last.metadata.tags
    assert "--profile smoke -p seed 1" in last.source
    html = page.cells[0].outputs[0]["data"]["text/html"]
    assert book.NO_INDEX_CLASS in html
    glued = page.cells[0].outputs[1]["data"]["application/papermill.record/text/html"]
    assert book.NO_INDEX_CLASS in glued  # a table glued into the text, too
    idlg = nbformat.read(src / "notebooks" / "attacks" / "idlg.ipynb", as_version=4)
    assert "dlg.py" not in idlg.cells[-1].source.split("```")[0]
