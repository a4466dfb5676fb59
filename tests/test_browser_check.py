"""The browser check itself (gi_lib.browser_check), on a small made-up site:
it passes a clean page and catches each fault the book could have. The real
book is checked by `make test-browser` after `make book`."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest

from gi_lib import browser_check as bc

# A 1x1 PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)


def _page(body: str, *, nav: str = "") -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head>"
        f"<body><div class='bd-sidebar-primary'>{nav}</div><main>{body}</main>"
        "</body></html>"
    )


def test_toc_pages_lists_root_parts_and_sections(tmp_path: Path) -> None:
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: intro\nparts:\n"
        "- caption: A\n  chapters:\n  - file: notebooks/attacks/dlg\n"
        "    sections:\n    - file: notebooks/attacks/idlg.ipynb\n"
        "- caption: B\n  chapters:\n  - file: scorecard\n",
        encoding="utf-8",
    )
    assert bc.toc_pages(toc) == [
        "intro",
        "notebooks/attacks/dlg",
        "notebooks/attacks/idlg",
        "scorecard",
    ]


def test_urls_are_sorted_into_pages_and_the_outside() -> None:
    origin = "http://127.0.0.1:8000"
    assert bc.page_path(f"{origin}/notebooks/a.html#top", origin) == "notebooks/a.html"
    assert bc.page_path(f"{origin}/", origin) == "index.html"
    assert bc.page_path(f"{origin}/_static/x.css", origin) is None
    assert bc.page_path("https://example.org/a.html", origin) is None
    assert bc.is_local(f"{origin}/_static/x.js", origin)
    assert bc.is_local("data:image/png;base64,xx", origin)
    assert not bc.is_local("https://cdn.example.org/x.js", origin)
    assert not bc.is_local("http://127.0.0.1:80001/x", origin)


def test_a_missing_browser_says_how_to_get_one(monkeypatch) -> None:
    monkeypatch.delenv(bc.CHROMIUM_ENV, raising=False)
    monkeypatch.setattr(bc.shutil, "which", lambda name: None)
    with pytest.raises(bc.BrowserCheckError, match="apt-get install chromium"):
        bc.find_chromium()


def _browser() -> str:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install -r requirements.txt)")
    try:
        return bc.find_chromium()
    except bc.BrowserCheckError as error:
        pytest.skip(str(error))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "html"
    (root / "sub").mkdir(parents=True)
    (root / "pixel.png").write_bytes(PIXEL)
    nav = "<a href='intro.html'>intro</a> <a href='sub/good.html'>good</a>"
    (root / "intro.html").write_text(
        _page("<h1>Intro</h1><img src='pixel.png'><p>Deep leakage</p>", nav=nav)
    )
    wide = "<td>" + "x" * 400 + "</td>"
    (root / "sub" / "good.html").write_text(
        _page(
            "<p>fine</p><pre>echo $$ \\[ not math \\]</pre>"
            f"<div style='overflow-x:auto'><table><tr>{wide}</tr></table></div>"
            "<style>table.gi-no-index tr > th:first-child {display: none}</style>"
            "<table class='dataframe gi-no-index'><tbody><tr><th>0</th><td>a</td>"
            "</tr></tbody></table>",
            nav="<a href='../intro.html'>back</a>",
        )
    )
    return root


def test_a_clean_site_passes_and_is_screenshot(site: Path, tmp_path: Path) -> None:
    chromium = _browser()
    shot = tmp_path / "shots" / "intro.png"
    report = bc.check_book(
        site,
        toc=["intro", "sub/good"],
        screenshots={"intro.html": shot},
        chromium=chromium,
    )
    assert report.ok, "\n".join(report.lines())
    assert [page.path for page in report.pages] == ["intro.html", "sub/good.html"]
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_each_fault_is_reported(site: Path) -> None:
    chromium = _browser()
    wide = "<td>" + "y" * 400 + "</td>"
    (site / "sub" / "bad.html").write_text(
        _page(
            "<img src='missing.png'>"
            "<p>an equation: $$x^2$$</p>"
            "<div class='math'>\\[ y \\]</div>"
            "<div style='overflow:hidden;width:300px'>"
            f"<table><tr>{wide}</tr></table></div>"
            "<table class='dataframe'><tbody><tr><th>0</th><td>a</td></tr>"
            "<tr><th>1</th><td>b</td></tr></tbody></table>"
            "<script>console.error('boom')</script>"
            "<script src='https://cdn.example.org/lib.js'></script>",
            nav="<a href='../intro.html'>back</a>",
        )
    )
    (site / "intro.html").write_text(
        _page("<p>x</p>", nav="<a href='sub/bad.html'>bad</a>")
    )
    report = bc.check_book(
        site, toc=["intro", "sub/bad", "sub/good"], chromium=chromium
    )
    assert not report.ok
    bad = next(page for page in report.pages if page.path == "sub/bad.html")
    text = "\n".join(bad.problems)
    assert "image does not decode: missing.png" in text
    assert "MathJax never loaded" in text  # the .math div, with no MathJax
    assert "console error: boom" in text
    assert "404 for /sub/missing.png" in text
    assert "cut off at the right" in text
    assert "shows pandas' default index" in text
    book_wide = "\n".join(report.problems)
    assert "does not reach these pages of the table of contents: sub/good" in book_wide
    assert "https://cdn.example.org/lib.js" in book_wide


def test_raw_dollars_are_reported_where_there_is_no_mathjax_markup(
    site: Path,
) -> None:
    chromium = _browser()
    (site / "intro.html").write_text(_page("<p>an equation: $$x^2$$</p>"))
    report = bc.check_book(site, toc=["intro"], chromium=chromium)
    assert any("raw math" in p for p in report.pages[0].problems), report.lines()


def test_no_book_says_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(bc.BrowserCheckError, match="make book"):
        bc.check_book(tmp_path, toc=["intro"], chromium="unused")


def test_a_search_that_never_finishes_is_a_problem_not_a_hang(
    site: Path, monkeypatch
) -> None:
    chromium = _browser()
    (site / "search.html").write_text(_page("<div id='search-results'></div>"))
    monkeypatch.setattr(bc, "TIMEOUT_MS", 2_000)
    report = bc.check_book(
        site,
        toc=["intro", "sub/good"],
        searches=[("Deep leakage", "intro.html")],
        chromium=chromium,
    )
    assert any("did not finish" in p for p in report.problems), report.lines()


def test_a_page_that_never_settles_is_a_problem_not_a_crash(
    site: Path, monkeypatch
) -> None:
    chromium = _browser()
    (site / "intro.html").write_text(
        _page(
            "<p>busy</p><script>setInterval(() => fetch('pixel.png?' + Math.random()),"
            " 100)</script>",
            nav="<a href='sub/good.html'>good</a>",
        )
    )
    monkeypatch.setattr(bc, "TIMEOUT_MS", 2_000)
    report = bc.check_book(site, toc=["intro", "sub/good"], chromium=chromium)
    intro = report.pages[0]
    assert any("the check stopped" in p for p in intro.problems), report.lines()
    assert [page.path for page in report.pages] == ["intro.html"]  # no links read


def test_the_default_searches_are_a_papers_name_and_title() -> None:
    toc = ["intro", "notebooks/attacks/idlg", "notebooks/attacks/dlg"]
    assert bc.default_searches(toc) == [
        ("DLG", "notebooks/attacks/dlg.html"),
        ("Deep Leakage from Gradients", "notebooks/attacks/dlg.html"),
    ]
    assert bc.default_searches(["intro"]) == []
