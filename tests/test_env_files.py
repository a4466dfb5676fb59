"""requirements.txt and environment.yml must describe the same environment."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Conda entries that set up the environment rather than name a dependency.
CONDA_TOOLING = {"python", "pip"}


def _name(requirement: str) -> str:
    """The normalised (PEP 503) package name of a requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read a package name from {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _pip_requirements() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    entries = [line.split("#", 1)[0].strip() for line in lines]
    return {_name(entry): entry.replace(" ", "") for entry in entries if entry}


def _conda_requirements() -> tuple[set[str], dict[str, str]]:
    spec = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda_names: set[str] = set()
    pip_entries: dict[str, str] = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            for requirement in entry.get("pip", []):
                pip_entries[_name(requirement)] = requirement.replace(" ", "")
        else:
            conda_names.add(_name(re.split(r"[=<>!~ ]", entry, maxsplit=1)[0]))
    return conda_names - CONDA_TOOLING, pip_entries


def test_requirements_and_environment_name_the_same_packages() -> None:
    pip_requirements = _pip_requirements()
    conda_names, conda_pip = _conda_requirements()
    in_conda = conda_names | set(conda_pip)
    assert set(pip_requirements) == in_conda, (
        f"only in requirements.txt: {sorted(set(pip_requirements) - in_conda)}; "
        f"only in environment.yml: {sorted(in_conda - set(pip_requirements))}"
    )


def test_shared_pip_entries_use_the_same_ranges() -> None:
    pip_requirements = _pip_requirements()
    _, conda_pip = _conda_requirements()
    differing = {
        name: (pip_requirements[name], spec)
        for name, spec in conda_pip.items()
        if pip_requirements.get(name) != spec
    }
    assert not differing, (
        f"ranges differ (requirements.txt, environment.yml): {differing}"
    )


def test_ranges_admit_the_reference_torch() -> None:
    """The versions the project is developed and tested with must stay allowed."""
    from packaging.requirements import Requirement

    pip_requirements = _pip_requirements()
    for name, version in {"torch": "2.14.1", "torchvision": "0.29.1"}.items():
        requirement = Requirement(pip_requirements[name])
        assert requirement.specifier.contains(version), (name, str(requirement))


def test_jupyter_book_stays_on_the_offline_capable_major_version() -> None:
    from packaging.requirements import Requirement

    requirement = Requirement(_pip_requirements()["jupyter-book"])
    assert requirement.specifier.contains("1.0.4")
    assert not requirement.specifier.contains("2.0.0")
