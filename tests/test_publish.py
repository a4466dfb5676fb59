"""`make publish`, offline: the built HTML lands on the gh-pages branch of a
local bare repository standing in for GitHub.

Make runs in this repository (its real Makefile) but git, and so ghp-import,
works on a throwaway clone: GIT_DIR points there, so this repository never
gets the branch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE_ENV_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT")
IDENTITY = {
    "GIT_AUTHOR_NAME": "gi-book test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "gi-book test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
}

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("make") is None,
    reason="needs git and make",
)


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> dict[str, Path]:
    """A bare "GitHub" repository and a clone whose origin it is."""
    remote = tmp_path / "remote.git"
    work = tmp_path / "clone"
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env = {**base, **IDENTITY}
    _git("init", "--bare", "-q", str(remote), env=env)
    _git("init", "-q", str(work), env=env)
    _git("-C", str(work), "commit", "-q", "--allow-empty", "-m", "source", env=env)
    _git("-C", str(work), "remote", "add", "origin", str(remote), env=env)
    return {"remote": remote, "work": work, "build": tmp_path / "build"}


def _publish(clone: dict[str, Path], branch: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in MAKE_ENV_VARS and not key.startswith("GIT_")
    }
    env.update(IDENTITY, GIT_DIR=str(clone["work"] / ".git"))
    return subprocess.run(
        [
            "make",
            "publish",
            "PROFILE=smoke",
            f"BUILD={clone['build']}",
            f"PY={sys.executable}",
            f"PUBLISH_BRANCH={branch}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _site(build: Path, title: str) -> Path:
    html = build / "smoke" / "_build" / "html"
    (html / "_static").mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text(f"<title>{title}</title>", encoding="utf-8")
    (html / "_static" / "gi-book.css").write_text("p {}", encoding="utf-8")
    return html


def test_publish_pushes_the_built_html_to_the_pages_branch(
    clone: dict[str, Path],
) -> None:
    branch = f"gi-test-pages-{uuid.uuid4().hex[:8]}"
    remote = clone["remote"]
    try:
        _site(clone["build"], "first")
        first = _publish(clone, branch)
        assert first.returncode == 0, first.stdout + first.stderr
        files = _git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", branch)
        # .nojekyll: GitHub Pages would otherwise drop the _static folder.
        assert files.splitlines() == [".nojekyll", "_static/gi-book.css", "index.html"]
        source = _git("--git-dir", str(clone["work"] / ".git"), "rev-parse", "HEAD")
        message = _git("--git-dir", str(remote), "log", "-1", "--format=%s", branch)
        assert message == f"The smoke book, built from {source[:7]}"

        _site(clone["build"], "second")
        second = _publish(clone, branch)
        assert second.returncode == 0, second.stdout + second.stderr
        page = _git("--git-dir", str(remote), "show", f"{branch}:index.html")
        assert page == "<title>second</title>"
        count = _git("--git-dir", str(remote), "rev-list", "--count", branch)
        assert count == "2"  # each publication is a commit on the branch
    finally:
        # This repository must not have been touched; never leave the branch.
        leaked = subprocess.run(
            ["git", "-C", str(ROOT), "branch", "--list", branch],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if leaked:
            delete = ["git", "-C", str(ROOT), "branch", "-D", branch]
            subprocess.run(delete, check=False)
        assert not leaked, f"make publish wrote {branch} into {ROOT}"


def test_publish_without_a_built_book_says_to_build_it(
    clone: dict[str, Path],
) -> None:
    completed = _publish(clone, "gh-pages")
    assert completed.returncode != 0
    assert "run make book PROFILE=smoke first" in completed.stderr
    assert _git("--git-dir", str(clone["remote"]), "branch", "--list") == ""
