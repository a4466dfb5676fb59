"""Every profile's settings pass each notebook's own parameter check.

The paper profile never runs in CI (it needs a GPU), so a typo or an
impossible value in it would otherwise surface only on a user's GPU.
"""

import importlib
import re
from pathlib import Path

import pytest

from gi_lib import runner
from gi_lib.profiles import profile_names

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.py"))
PROFILES = profile_names(ROOT / "notebooks" / "profiles")
IMPORT = re.compile(r"^from gi_lib\.experiments import (\w+) as experiment$", re.M)


def test_the_profiles_are_the_profile_files() -> None:
    assert PROFILES == profile_names()
    assert {"smoke", "cpu", "paper"} <= set(PROFILES)  # the book's three


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_profile_settings_pass_the_notebook_check(source: Path, profile: str) -> None:
    match = IMPORT.search(source.read_text(encoding="utf-8"))
    assert match, f"{source} does not import its experiment as `experiment`"
    experiment = importlib.import_module(f"gi_lib.experiments.{match.group(1)}")
    values = runner.parameter_defaults(runner.read_notebook(source))
    key = source.relative_to(ROOT / "notebooks").with_suffix("").as_posix()
    overrides = runner.load_profile(ROOT / "notebooks" / "profiles", profile)
    values.update(overrides.get(key) or {})
    values["profile"] = profile
    experiment.check(values)
