"""gi_lib.runner: profiles, parameter checks, and clean failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from gi_lib import runner

ROOT = Path(__file__).resolve().parents[1]

TOY = """\
# %% [markdown]
# # Toy notebook

# %% tags=["parameters"]
profile = "cpu"
seed = 0
num_trials: int = 3
fail = False
write = True

# %%
import matplotlib.pyplot as plt

from gi_lib.results import ResultRow, write_results

if fail:
    raise ValueError("num_trials must be positive; set num_trials to 1 or more.")
figure, axes = plt.subplots()
axes.plot(range(num_trials))
plt.show()

# %%
if write:
    write_results(
        "toy",
        profile=profile,
        parameters={"seed": seed, "num_trials": num_trials},
        rows=[ResultRow.against("toy/exp", "psnr", 30.0 + num_trials, None)],
        wall_seconds=0.1,
    )
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository layout with one notebook and two profiles."""
    (tmp_path / "notebooks" / "attacks").mkdir(parents=True)
    (tmp_path / "notebooks" / "profiles").mkdir()
    (tmp_path / "notebooks" / "attacks" / "toy.py").write_text(TOY, encoding="utf-8")
    (tmp_path / "notebooks" / "profiles" / "smoke.yaml").write_text(
        "attacks/toy:\n  num_trials: 1\n", encoding="utf-8"
    )
    (tmp_path / "notebooks" / "profiles" / "cpu.yaml").write_text(
        "attacks/toy: {}  # the parameters cell\n", encoding="utf-8"
    )
    # The kernel runs in the toy repository; it must still import gi_lib.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return tmp_path


def _run(repo: Path, profile: str = "smoke", **kwargs):
    return runner.run_notebook(
        repo / "notebooks" / "attacks" / "toy.py",
        profile=profile,
        output=repo / "out" / "toy.ipynb",
        results_dir=repo / "out" / "results",
        **kwargs,
    )


def test_parameter_defaults_reads_the_parameters_cell(repo: Path) -> None:
    notebook = runner.read_notebook(repo / "notebooks" / "attacks" / "toy.py")
    assert runner.parameter_defaults(notebook) == {
        "profile": "cpu",
        "seed": 0,
        "num_trials": 3,
        "fail": False,
        "write": True,
    }


def test_profile_overrides_and_the_profile_itself_are_injected(repo: Path) -> None:
    source = runner.locate(repo / "notebooks" / "attacks" / "toy.py")
    notebook = runner.read_notebook(source.path)
    profiles = repo / "notebooks" / "profiles"
    assert source.key == "attacks/toy"
    assert runner.resolve_parameters(
        source, notebook, profile="smoke", profiles_dir=profiles, extra={"seed": 2}
    ) == {"num_trials": 1, "seed": 2, "profile": "smoke"}
    assert runner.resolve_parameters(
        source, notebook, profile="cpu", profiles_dir=profiles
    ) == {"profile": "cpu"}


def test_unknown_profile_lists_the_valid_ones(repo: Path) -> None:
    with pytest.raises(runner.RunnerError, match=r"Unknown profile 'gpu'.*cpu, smoke"):
        _run(repo, profile="gpu")


def test_profile_naming_an_unknown_parameter_fails_fast(repo: Path) -> None:
    (repo / "notebooks" / "profiles" / "smoke.yaml").write_text(
        "attacks/toy:\n  num_trial: 1\n", encoding="utf-8"
    )
    with pytest.raises(runner.RunnerError) as error:
        _run(repo)
    message = str(error.value)
    assert "num_trial" in message
    assert "Valid names: fail, num_trials, profile, seed, write" in message
    assert not (repo / "out").exists()  # nothing ran, nothing written


def test_command_line_parameter_is_checked_too(repo: Path) -> None:
    with pytest.raises(runner.RunnerError, match="iterations.*Valid names"):
        _run(repo, extra_parameters={"iterations": 3})


def test_notebook_without_parameters_cell_is_rejected(repo: Path) -> None:
    path = repo / "notebooks" / "attacks" / "toy.py"
    path.write_text(TOY.replace(' tags=["parameters"]', ""), encoding="utf-8")
    with pytest.raises(runner.RunnerError, match="tagged 'parameters'"):
        _run(repo)


def test_run_writes_notebook_and_results(repo: Path) -> None:
    output = _run(repo, extra_parameters={"seed": 4})
    executed = nbformat.read(output, as_version=4)
    injected = [
        cell
        for cell in executed.cells
        if "injected-parameters" in cell.metadata.get("tags", [])
    ]
    assert injected and 'profile = "smoke"' in injected[0].source
    assert any(
        output.get("output_type") == "display_data"
        and "image/png" in output.get("data", {})
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    record = json.loads((repo / "out" / "results" / "toy.json").read_text())
    assert record["profile"] == "smoke"
    assert record["parameters"] == {"seed": 4, "num_trials": 1}
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]


def test_failed_run_leaves_no_notebook_and_no_results(repo: Path) -> None:
    _run(repo)  # a good run first: its outputs are now stale
    with pytest.raises(runner.RunnerError) as error:
        _run(repo, extra_parameters={"fail": True})
    message = str(error.value)
    assert "ValueError: num_trials must be positive" in message
    assert "\n" not in message  # one paragraph
    out = repo / "out"
    assert not (out / "toy.ipynb").exists()
    assert not (out / "results" / "toy.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_run_that_writes_no_results_fails(repo: Path) -> None:
    with pytest.raises(runner.RunnerError, match="wrote no results file"):
        _run(repo, extra_parameters={"write": False})
    assert not (repo / "out" / "toy.ipynb").exists()


def test_cli_exits_1_with_a_short_message(repo: Path, capsys) -> None:
    code = runner.main(
        [
            str(repo / "notebooks" / "attacks" / "toy.py"),
            "--profile",
            "nope",
            "--output",
            str(repo / "out.ipynb"),
            "--results-dir",
            str(repo / "results"),
        ]
    )
    assert code == 1
    assert "Valid profiles: cpu, smoke" in capsys.readouterr().err


NAP = """\
# %% tags=["parameters"]
profile = "cpu"
marker = ""

# %%
import os
import time
from pathlib import Path

Path(marker).write_text(str(os.getpid()), encoding="utf-8")
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    psutil = pytest.importorskip("psutil")
    if not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"]
)
def test_signal_stops_the_run_and_leaves_nothing_behind(
    repo: Path, signum: signal.Signals
) -> None:
    (repo / "notebooks" / "attacks" / "nap.py").write_text(NAP, encoding="utf-8")
    out = repo / "out"
    (out / "results").mkdir(parents=True)
    # Outputs of an earlier run, which this one replaces.
    (out / "nap.ipynb").write_text("{}", encoding="utf-8")
    (out / "results" / "nap.json").write_text("{}", encoding="utf-8")
    marker = repo / "kernel.pid"
    command = [
        *(sys.executable, "-m", "gi_lib.runner"),
        str(repo / "notebooks" / "attacks" / "nap.py"),
        *("--profile", "smoke", "--output", str(out / "nap.ipynb")),
        *("--results-dir", str(out / "results"), "-p", "marker", str(marker)),
    ]
    # Files, not pipes: the kernel inherits them, and waiting for a pipe to
    # close would wait for the kernel too.
    log = repo / "runner.log"
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=handle)
    kernel = None
    try:
        deadline = time.monotonic() + 120
        while not marker.is_file() or not marker.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the notebook's cell never started"
            time.sleep(0.05)
        kernel = int(marker.read_text())
        assert _alive(kernel)
        process.send_signal(signum)
        process.wait(timeout=60)
        assert not _alive(kernel), "the kernel outlived the runner"
    finally:
        if process.poll() is None:
            process.kill()
        if kernel is not None and _alive(kernel):
            os.kill(kernel, signal.SIGKILL)
    assert process.returncode == 128 + signum
    assert f"stopped by {signum.name}" in log.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["results"]
    assert list((out / "results").iterdir()) == []
