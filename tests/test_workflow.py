"""The GitHub Actions workflow that builds, checks and publishes the book,
linted offline: it parses, has the shape GitHub requires, and calls the same
make targets as .ci/run (actionlint itself cannot be installed here: its
Python package downloads the binary when it builds)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
STEP_KEYS = {
    "id",
    "if",
    "name",
    "uses",
    "run",
    "with",
    "env",
    "shell",
    "working-directory",
    "continue-on-error",
    "timeout-minutes",
}
JOB_KEYS = {
    "name",
    "needs",
    "runs-on",
    "permissions",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "defaults",
    "if",
    "steps",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "\t" not in text, "YAML must be indented with spaces"
    spec = yaml.safe_load(text)
    # YAML 1.1 reads the key `on` as True.
    if True in spec:
        spec["on"] = spec.pop(True)
    return spec


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _make_calls(script: str) -> list[tuple[str, dict[str, str]]]:
    """The `make TARGET VAR=value ...` commands of a shell script, in order."""
    calls = []
    for line in script.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("make "):
            continue
        words = shlex.split(line)[1:]
        variables = dict(w.split("=", 1) for w in words if "=" in w)
        targets = [w for w in words if "=" not in w and not w.startswith("-")]
        calls += [(target, variables) for target in targets]
    return calls


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets: set[str] = set()
    for match in re.finditer(r"^([A-Za-z0-9_.$() -]+?)\s*::?(?!=)", text, re.M):
        targets.update(match.group(1).split())
    return targets


def test_the_workflow_has_the_shape_github_requires(workflow: dict[str, Any]) -> None:
    assert set(workflow) >= {"name", "on", "jobs"}
    assert workflow["jobs"], "a workflow needs a job"
    for name, job in workflow["jobs"].items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name), name
        assert set(job) <= JOB_KEYS, f"{name}: unknown keys {set(job) - JOB_KEYS}"
        assert job.get("runs-on"), f"{name} says where it runs"
        assert isinstance(job.get("timeout-minutes"), int), f"{name} has a time limit"
        for step in job["steps"]:
            assert set(step) <= STEP_KEYS, f"unknown step keys {set(step) - STEP_KEYS}"
            assert ("uses" in step) != ("run" in step), f"uses or run: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), (
                    f"{step['uses']}: an action is pinned to a major version"
                )
            else:
                assert "with" not in step, "`with` belongs to an action"


def test_it_runs_on_each_push_to_main_and_may_push_pages(
    workflow: dict[str, Any],
) -> None:
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"]["contents"] == "write"
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_it_builds_checks_then_publishes_with_the_makefiles_targets(
    workflow: dict[str, Any],
) -> None:
    calls = [
        call for step in _steps(workflow) for call in _make_calls(step.get("run", ""))
    ]
    targets = [target for target, _ in calls]
    missing = set(targets) - _makefile_targets()
    assert not missing, f"targets the Makefile does not define: {missing}"
    order = ["install", "book", "test-browser", "publish"]
    assert [t for t in targets if t in order] == order, targets
    profiles = {
        variables.get("PROFILE") for target, variables in calls if target in order[1:]
    }
    assert profiles == {"$PROFILE"} and workflow["env"]["PROFILE"] == "smoke"


def test_it_builds_the_book_as_ci_does(workflow: dict[str, Any]) -> None:
    ci = _make_calls((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    ci_targets = [target for target, _ in ci]
    for target in ("book", "test-browser"):
        assert target in ci_targets, f".ci/run runs make {target}"
        assert dict(ci)[target].get("PROFILE") == workflow["env"]["PROFILE"]
    assert ci_targets.index("book") < ci_targets.index("test-browser")
    assert "publish" not in ci_targets  # CI checks; only the workflow publishes


def test_the_screenshots_are_kept_from_where_the_check_writes_them(
    workflow: dict[str, Any],
) -> None:
    uploads = [
        step
        for step in _steps(workflow)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert len(uploads) == 1 and uploads[0]["if"] == "always()"
    assert uploads[0]["with"]["path"] == "_build/${{ env.PROFILE }}/browser/"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "SITE_SHOTS := $(BUILD)/$(SITE_PROFILE)/browser" in makefile
