"""Build the whole book with the smoke profile, as `make book PROFILE=smoke` does.

The build goes into a temporary BUILD folder, so a user's own build is left
alone, and uses this interpreter (PY=...), so nothing is installed. A broken
notebook, a missing figure or a strict-build warning fails this test.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gi_lib import book
from gi_lib.papers import PAPERS

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
BUILD_TIMEOUT_S = 1800
# Make's own variables from an enclosing `make test` would leak into the build.
MAKE_ENV_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the book once for this module; return ``<BUILD>/smoke``."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("GNU make is not installed, so the book cannot be built")
    build = tmp_path_factory.mktemp("book-build")
    env = {key: value for key, value in os.environ.items() if key not in MAKE_ENV_VARS}
    command = [
        make,
        "book",
        f"PROFILE={PROFILE}",
        f"BUILD={build}",
        f"PY={sys.executable}",
    ]
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    seconds = time.perf_counter() - started
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, (
        f"`{' '.join(command)}` failed (exit {completed.returncode}) after "
        f"{seconds:.0f} s; end of its output:\n{log[-6000:]}"
    )
    print(f"smoke book built in {seconds:.0f} s")
    return build / PROFILE


def _toc_files() -> list[str]:
    """The pages of the table of contents that the build generates."""
    sources = sorted((ROOT / "notebooks").glob("*/*.py"))
    pages = [
        path.relative_to(ROOT).with_suffix("").as_posix()
        for path in sources
        if path.parent.name in book.NOTEBOOK_PARTS
    ]
    return book.toc_files(book.table_of_contents(PAPERS, pages=pages))


def _notebook_files() -> list[str]:
    return [name for name in _toc_files() if name.startswith("notebooks/")]


def _html(smoke_build: Path, name: str) -> str:
    """The page's HTML, entities decoded and Sphinx's curly apostrophes made
    straight, so that text from a results file can be found in it."""
    text = (smoke_build / "_build" / "html" / f"{name}.html").read_text(
        encoding="utf-8"
    )
    return html.unescape(text).replace("\u2019", "'")


def test_every_toc_page_is_built(smoke_build: Path) -> None:
    html = smoke_build / "_build" / "html"
    assert (html / "index.html").is_file()
    built_toc = yaml.safe_load((smoke_build / "book" / book.TOC_FILE).read_text())
    assert book.toc_files(built_toc) == _toc_files()
    missing = [name for name in _toc_files() if not (html / f"{name}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"


@pytest.mark.parametrize("name", _notebook_files())
def test_notebook_page_shows_a_figure(smoke_build: Path, name: str) -> None:
    images = re.findall(r"<img [^>]*src=\"([^\"]+)\"", _html(smoke_build, name))
    assert images, f"{name}: no figure on the page"
    page_dir = (smoke_build / "_build" / "html" / name).parent
    for source in images:
        if not source.startswith("data:"):
            assert (page_dir / source).is_file(), f"{name}: image {source} is missing"


@pytest.mark.parametrize("name", _notebook_files())
def test_scorecard_lists_the_notebook_rows(smoke_build: Path, name: str) -> None:
    stem = Path(name).name
    record = json.loads((smoke_build / "results" / f"{stem}.json").read_text())
    assert record["profile"] == PROFILE
    assert record["rows"], f"{stem}: results file has no rows"
    scorecard = _html(smoke_build, "scorecard")
    assert f'href="{name}.html"' in scorecard, f"scorecard does not link {name}"
    for row in record["rows"]:
        assert row["experiment"] in scorecard, f"{stem}: {row['experiment']} not shown"


def test_mathjax_is_served_from_the_book(smoke_build: Path) -> None:
    html = smoke_build / "_build" / "html"
    tags = re.findall(
        r"<script [^>]*src=\"([^\"]*MathJax\.js[^\"]*)\"", _html(smoke_build, "intro")
    )
    assert tags, "intro has equations but loads no MathJax"
    for source in tags:
        assert not re.match(r"(https?:)?//", source), source
        assert (html / source.split("?")[0]).is_file(), f"{source} is not in the book"


def test_no_page_loads_anything_from_the_internet(smoke_build: Path) -> None:
    html = smoke_build / "_build" / "html"
    remote = re.compile(
        r"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc=\"(?:https?:)?//"
        r"|<link\b[^>]*\bhref=\"(?:https?:)?//",
        re.IGNORECASE,
    )
    offenders = {
        str(page.relative_to(html)): remote.findall(page.read_text(encoding="utf-8"))
        for page in html.glob("**/*.html")
    }
    offenders = {page: found for page, found in offenders.items() if found}
    assert not offenders, f"pages that fetch from the internet: {offenders}"
    remote_mathjax = re.compile(r"(?:https?:)?//[^\"' ]*mathjax", re.IGNORECASE)
    mentions = [
        str(page.relative_to(html))
        for page in html.glob("**/*.html")
        if remote_mathjax.search(page.read_text(encoding="utf-8"))
    ]
    assert not mentions, f"pages naming a remote MathJax: {mentions}"


@pytest.mark.parametrize("name", _notebook_files())
def test_every_page_checks_its_papers_claims(smoke_build: Path, name: str) -> None:
    stem = Path(name).name
    record = json.loads((smoke_build / "results" / f"{stem}.json").read_text())
    assert record["claims"], f"{stem}: results file holds no claim"
    page = _html(smoke_build, name)
    assert "verdict here" in page, f"{name}: no claims table on the page"
    # Page.finish's sentence, or (where a page removes that cell) the wall
    # time in the section that ends every page.
    wall = f"{float(record['wall_seconds']):.1f} s (wall time)"
    assert "This page ran in" in page or wall in page, (
        f"{name}: the page does not say how long it ran"
    )
    scorecard = _html(smoke_build, "scorecard")
    for claim in record["claims"]:
        assert claim["verdict"] in scorecard


@pytest.mark.parametrize("name", _notebook_files())
def test_every_page_offers_its_files_and_the_command_that_reruns_it(
    smoke_build: Path, name: str
) -> None:
    html_dir = smoke_build / "_build" / "html"
    page = _html(smoke_build, name)
    assert book.RERUN_HEADING in page, f"{name}: no section to rerun the page"
    stem = Path(name).name
    downloads = re.findall(r'href="([^"]*_downloads/[^"]+)"', page)
    for suffix in (".py", ".ipynb"):
        found = [link for link in downloads if link.endswith(f"/{stem}{suffix}")]
        assert found, f"{name}: no {stem}{suffix} to download"
        assert (html_dir / Path(name).parent / found[0]).is_file()
    key = name.removeprefix("notebooks/")
    text = " ".join(re.sub(r"<[^>]+>", "", page).split())
    assert f"python -m gi_lib.runner notebooks/{key}.py --profile {PROFILE}" in text
    record = json.loads((smoke_build / "results" / f"{stem}.json").read_text())
    for parameter in record["parameters"]:
        if parameter != "profile":
            assert f"{parameter}" in text, f"{name}: parameter {parameter} not shown"
