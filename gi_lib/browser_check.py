"""The built book, checked in a real browser: ``python -m gi_lib.browser_check``.

``make test-browser`` serves the built HTML book from a local HTTP server and
opens it in headless Chromium (the system's ``chromium``, driven by
Playwright for Python through ``executable_path``; no browser is ever
downloaded). Starting from the front page it follows the book's navigation
(the sidebar and the previous/next links) and on every page it reaches it
checks what a reader would notice:

- the page loads with no console error, no uncaught script error and no
  failed request of the site's own;
- every image decodes (``naturalWidth`` above zero);
- every equation is typeset by MathJax, and no raw ``$$``, ``\\[`` or ``\\(``
  is left in the text (code blocks aside);
- no table is cut off at the right: a table wider than the text must sit in a
  container that scrolls it (or wrap its cells), and no pandas table shows
  its default index (0, 1, 2, ...);
- no request leaves the site: every request to another host is blocked and
  reported, so the book is known to work offline.

Then it checks that the navigation reached every page of the table of
contents (``_toc.yml`` of the assembled book source) and that the book's
search finds a paper by its name and by its title, and it keeps
screenshots of the introduction and of one paper page.

Example::

    python -m gi_lib.browser_check _build/smoke/_build/html \\
        --toc _build/smoke/book/_toc.yml --screenshots _build/smoke/browser
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urldefrag, urlsplit

import yaml

CHROMIUM_ENV = "GI_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
VIEWPORT = {"width": 1280, "height": 900}
# Milliseconds a page may take to load, typeset its equations or search.
TIMEOUT_MS = 60_000

# Everything a reader can click to move through the book.
NAVIGATION_LINKS = (
    ".bd-sidebar-primary a[href], .prev-next-area a[href], .bd-header a[href]"
)

_IMAGES_JS = """
async () => {
  const images = [...document.querySelectorAll('img')];
  for (const image of images) image.loading = 'eager';
  await Promise.all(images.map(image => image.complete ? null :
    new Promise(done => { image.addEventListener('load', done);
                          image.addEventListener('error', done); })));
  return images.filter(image => !(image.naturalWidth > 0))
               .map(image => image.getAttribute('src') || '(no src)');
}
"""

# Resolves once MathJax 2 has typeset the page (at once when the page has no
# math); reports "no MathJax" when math is there but MathJax never came.
_MATHJAX_JS = """
async (timeout) => {
  const hasMath = document.querySelector('.math, script[type^="math/tex"]');
  if (!hasMath) return 'none';
  if (!document.querySelector('script[src*="MathJax"], script[src*="mathjax"]'))
    return 'no MathJax';
  const start = Date.now();
  while (!(window.MathJax && window.MathJax.Hub && window.MathJax.isReady)) {
    if (Date.now() - start > timeout) return 'no MathJax';
    await new Promise(done => setTimeout(done, 100));
  }
  await new Promise(done => window.MathJax.Hub.Queue(done));
  return 'typeset';
}
"""

_MATH_JS = """
() => {
  const problems = [];
  const rendered = '.MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML, ' +
                   'mjx-container, script[type^="math/tex"]';
  const inside = '.MathJax, .MathJax_Display, .MathJax_SVG, .MJX_Assistive_MathML';
  for (const node of document.querySelectorAll('div.math, span.math')) {
    if (node.parentElement.closest(inside)) continue;  // MathJax's own spans
    if (!node.querySelector(rendered))
      problems.push('an equation was not typeset: ' +
                    node.textContent.trim().slice(0, 60));
  }
  for (const node of document.querySelectorAll('.MathJax_Error, .merror'))
    problems.push('MathJax error: ' + node.textContent.trim().slice(0, 80));
  const body = document.querySelector('main') || document.body;
  const copy = body.cloneNode(true);
  const skip = 'pre, code, script, style, textarea, .MathJax_Preview';
  for (const node of copy.querySelectorAll(skip)) node.remove();
  const text = copy.textContent;
  for (const raw of ['$$', '\\\\[', '\\\\(', '\\\\begin{']) {
    const at = text.indexOf(raw);
    if (at >= 0)
      problems.push('raw math left in the text: "' +
        text.slice(Math.max(0, at - 30), at + 40).replace(/\\s+/g, ' ') + '"');
  }
  return problems;
}
"""

# A table is cut off when its right edge lies beyond a container that clips
# it without scrolling, or beyond the window.
_TABLES_JS = """
() => {
  const describe = el => el.tagName.toLowerCase() +
    (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].slice(0, 2).join('.') : '');
  const label = table => {
    const head = [...table.querySelectorAll('th, td')]
      .find(cell => cell.textContent.trim());
    return head ? '"' + head.textContent.trim().slice(0, 40) + '"' : '(empty)';
  };
  const problems = [];
  const width = document.documentElement.clientWidth;
  for (const table of document.querySelectorAll('main table')) {
    const box = table.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // hidden, e.g. folded
    let scrolls = false, cut = null;
    for (let el = table.parentElement; el && el !== document.body;
         el = el.parentElement) {
      const style = getComputedStyle(el);
      if (style.overflowX === 'visible') continue;
      const outer = el.getBoundingClientRect();
      if (box.right <= outer.right + 1) continue;
      if ((style.overflowX === 'auto' || style.overflowX === 'scroll') &&
          el.scrollWidth > el.clientWidth) { scrolls = true; break; }
      cut = describe(el); break;
    }
    if (cut)
      problems.push('table ' + label(table) + ' is cut off at the right by ' + cut);
    else if (!scrolls && box.right > width + 1)
      problems.push('table ' + label(table) + ' runs ' +
                    Math.round(box.right - width) + ' px beyond the window');
  }
  // pandas' default index (0, 1, 2, ...) says nothing and must not show.
  for (const table of document.querySelectorAll('main table.dataframe')) {
    const heads = [...table.querySelectorAll('tbody tr')]
      .map(row => row.firstElementChild);
    if (heads.length && heads.every((cell, i) => cell && cell.tagName === 'TH' &&
        cell.textContent.trim() === String(i) && cell.offsetWidth > 0))
      problems.push('table ' + label(table) + " shows pandas' default index");
  }
  return problems;
}
"""

# Sphinx's search page (searchtools.js) fills #search-results and says in its
# summary when it has finished.
_SEARCH_DONE_JS = """
() => {
  const summary = document.querySelector('#search-results .search-summary');
  return !!summary && /finished|did not match/i.test(summary.textContent);
}
"""


class BrowserCheckError(Exception):
    """The check cannot run (no browser, no book); the message says what to do."""


@dataclass
class PageReport:
    """What one page showed the browser."""

    path: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The whole book's check."""

    pages: list[PageReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # book-wide ones
    blocked: list[str] = field(default_factory=list)  # requests that left the site
    screenshots: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(page.problems for page in self.pages)

    def lines(self) -> list[str]:
        out = []
        for page in self.pages:
            mark = "ok " if not page.problems else "BAD"
            out.append(f"{mark} {page.path}")
            out += [f"      {problem}" for problem in page.problems]
        out += [f"BAD {problem}" for problem in self.problems]
        for shot in self.screenshots:
            out.append(f"screenshot: {shot}")
        verdict = "passed" if self.ok else "FAILED"
        bad = sum(1 for page in self.pages if page.problems) + len(self.problems)
        out.append(
            f"browser check {verdict}: {len(self.pages)} pages, {bad} with problems"
        )
        return out


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit``, ``$GI_CHROMIUM``, or on the PATH.

    Raises:
        BrowserCheckError: none found; says how to install one.
    """
    for candidate in (explicit, os.environ.get(CHROMIUM_ENV)):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
            raise BrowserCheckError(f"No Chromium executable at {candidate!r}.")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserCheckError(
        "No Chromium found on the PATH. Install Debian's package (apt-get install "
        f"chromium; `make test-browser` does it when run as root) or set "
        f"{CHROMIUM_ENV} to a Chromium or Chrome executable. Browsers are never "
        "downloaded by Playwright here."
    )


def toc_pages(toc_file: str | Path) -> list[str]:
    """The pages of a Jupyter Book ``_toc.yml``, root first: docnames such as
    ``intro`` and ``notebooks/attacks/dlg``."""
    toc = yaml.safe_load(Path(toc_file).read_text(encoding="utf-8"))
    pages = [str(toc["root"])]

    def walk(entries: Sequence[Any]) -> None:
        for entry in entries or []:
            if "file" in entry:
                pages.append(str(Path(entry["file"]).with_suffix("").as_posix()))
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return pages


def page_path(url: str, origin: str) -> str | None:
    """A URL of the site as the path of its page (``notebooks/attacks/dlg.html``),
    without query or fragment; None for another site or a non-page."""
    url, _ = urldefrag(url)
    if not url.startswith(origin + "/"):
        return None
    path = urlsplit(url).path.lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path if path.endswith(".html") else None


def is_local(url: str, origin: str) -> bool:
    """Whether a request stays on the site (or needs no network at all)."""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    return url == origin or url.startswith(origin + "/")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a free local port; yield its origin."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _launch(playwright: Any, executable: str) -> Any:
    args = ["--no-first-run", "--disable-background-networking"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses its sandbox as root
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=args
    )


def _check_page(page: Any, url: str, origin: str, report: PageReport) -> list[str]:
    """Load ``url`` and check it; returns the page links of its navigation."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def failed(response: Any) -> None:
        if response.status >= 400 and is_local(response.url, origin):
            errors.append(f"{response.status} for {response.url[len(origin) :]}")

    page.on("response", failed)
    response = page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    if response is None or response.status >= 400:
        status = "no response" if response is None else response.status
        report.problems.append(f"the page does not load ({status})")
        return []
    report.problems += [
        f"image does not decode: {src}" for src in page.evaluate(_IMAGES_JS)
    ]
    state = page.evaluate(_MATHJAX_JS, TIMEOUT_MS)
    if state == "no MathJax":
        report.problems.append("the page has equations but MathJax never loaded")
    else:
        report.problems += page.evaluate(_MATH_JS)
    report.problems += page.evaluate(_TABLES_JS)
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    report.problems += [f"console error: {text}" for text in dict.fromkeys(errors)]
    hrefs = page.eval_on_selector_all(
        NAVIGATION_LINKS, "links => links.map(a => a.href)"
    )
    return [path for href in hrefs if (path := page_path(href, origin))]


def _check_search(context: Any, origin: str, query: str, expect: str) -> str | None:
    """Search the book for ``query``; a problem unless a hit links to ``expect``."""
    page = context.new_page()
    try:
        page.goto(f"{origin}/search.html?q={quote_plus(query)}", timeout=TIMEOUT_MS)
        page.wait_for_function(_SEARCH_DONE_JS, timeout=TIMEOUT_MS)
        hits = page.eval_on_selector_all(
            "#search-results li a", "links => links.map(a => a.href)"
        )
    except Exception as error:  # a timeout or a script error: report it
        return f"search for {query!r} did not finish: {type(error).__name__}: {error}"
    finally:
        page.close()
    paths = [page_path(hit, origin) for hit in hits]
    if expect not in paths:
        found = ", ".join(p for p in paths if p) or "nothing"
        return f"search for {query!r} does not find {expect} (found: {found})"
    return None


def check_book(
    html_dir: str | Path,
    *,
    toc: Sequence[str],
    searches: Sequence[tuple[str, str]] = (),
    screenshots: dict[str, Path] | None = None,
    chromium: str | None = None,
    start: str | None = None,
) -> Report:
    """Check a built HTML book in headless Chromium.

    Args:
        html_dir: the built book (``_build/<profile>/_build/html``).
        toc: docnames the navigation must reach (:func:`toc_pages`).
        searches: ``(query, page)`` pairs: searching ``query`` must find ``page``
            (a path such as ``notebooks/attacks/dlg.html``).
        screenshots: page path -> PNG file to write of it (whole page).
        chromium: the browser executable (default: :func:`find_chromium`).
        start: the page the navigation starts from (default: the first page
            of ``toc``, the book's root page).

    Returns:
        The report: one entry per page reached, and book-wide problems.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    start = start or (f"{toc[0]}.html" if toc else "index.html")
    if not (html_dir / start).is_file():
        raise BrowserCheckError(
            f"No built book at {html_dir} ({start} is missing): run `make book` first."
        )
    executable = find_chromium(chromium)
    report = Report()
    with serve(html_dir) as origin, sync_playwright() as playwright:
        browser = _launch(playwright, executable)
        context = browser.new_context(viewport=VIEWPORT, service_workers="block")

        def guard(route: Any) -> None:
            if is_local(route.request.url, origin):
                route.continue_()
            else:
                report.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        queue, seen = [start], {start}
        while queue:
            path = queue.pop(0)
            page_report = PageReport(path)
            report.pages.append(page_report)
            page = context.new_page()
            links: list[str] = []
            try:
                links = _check_page(page, f"{origin}/{path}", origin, page_report)
                if screenshots and path in screenshots:
                    target = screenshots[path]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(target), full_page=True)
                    report.screenshots.append(target)
            except PlaywrightError as error:  # a timeout, a crashed page
                message = " ".join(str(error).split())[:300]
                page_report.problems.append(f"the check stopped: {message}")
            finally:
                page.close()
            for link in links:
                if link not in seen and (html_dir / link).is_file():
                    seen.add(link)
                    queue.append(link)
        missing = [doc for doc in toc if f"{doc}.html" not in seen]
        if missing:
            report.problems.append(
                "the navigation does not reach these pages of the table of "
                f"contents: {', '.join(missing)}"
            )
        for query, expect in searches:
            problem = _check_search(context, origin, query, expect)
            if problem:
                report.problems.append(problem)
        browser.close()
    if report.blocked:
        report.problems.append(
            "requests that leave the site (blocked; the book must read offline): "
            + ", ".join(sorted(set(report.blocked)))
        )
    for shot in (screenshots or {}).values():
        if shot not in report.screenshots:
            report.problems.append(f"no screenshot {shot}: its page was not reached")
    return report


def default_searches(toc: Sequence[str]) -> list[tuple[str, str]]:
    """What a reader would search for: the short name and the title of the
    first paper of ``gi_lib.papers`` whose notebook is in the book, each with
    that notebook's page."""
    from gi_lib.papers import PAPERS

    for paper in PAPERS:
        if paper.notebook and f"notebooks/{paper.notebook}" in toc:
            page = f"notebooks/{paper.notebook}.html"
            return [(paper.name, page), (paper.title, page)]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gi_lib.browser_check",
        description="Check the built HTML book in headless Chromium.",
    )
    parser.add_argument("html", help="the built book: _build/<profile>/_build/html")
    parser.add_argument(
        "--toc", required=True, help="the assembled book's _toc.yml (pages to reach)"
    )
    parser.add_argument(
        "--screenshots", help="folder for screenshots of the introduction and a paper"
    )
    parser.add_argument("--chromium", help=f"browser executable (or ${CHROMIUM_ENV})")
    args = parser.parse_args(argv)
    try:
        pages = toc_pages(args.toc)
        searches = default_searches(pages)
        shots: dict[str, Path] = {}
        if args.screenshots:
            folder = Path(args.screenshots)
            shots[f"{pages[0]}.html"] = folder / "introduction.png"
            if searches:
                shots[searches[0][1]] = folder / "paper.png"
        report = check_book(
            args.html,
            toc=pages,
            searches=searches,
            screenshots=shots,
            chromium=args.chromium,
        )
    except BrowserCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
