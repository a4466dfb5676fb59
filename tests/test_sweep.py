"""Parameter sweeps on Dask (gi_lib.sweep): the grid, skipping, failures, and a
real 2-worker sweep of DLG over 4 seeds on the smoke profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gi_lib import sweep
from gi_lib.results import ResultRow, write_results
from gi_lib.runner import RunnerError

pytest.importorskip("dask.distributed")

ROOT = Path(__file__).resolve().parents[1]
DLG = ROOT / "notebooks" / "attacks" / "dlg.py"


# --- the grid -------------------------------------------------------------------


def test_grid_values_are_read_as_yaml() -> None:
    grid = sweep.parse_grid(["seed=0,1,2", "lr=0.1,1", "dataset=mnist,cifar10"])
    assert grid == {"seed": [0, 1, 2], "lr": [0.1, 1], "dataset": ["mnist", "cifar10"]}
    assert sweep.parse_grid(['dataset=["mnist,cifar10", "mnist"]']) == {
        "dataset": ["mnist,cifar10", "mnist"]
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["seed"], "NAME=v1,v2"),
        (["seed=0,,1"], "empty value"),
        (["seed=0,0"], "repeats"),
        (["seed=0", "seed=1"], "twice"),
        (["profile=cpu"], "--profile"),
        (["1x=2"], "not a parameter name"),
        (["dataset=[mnist"], "YAML"),
        ([], "empty"),
    ],
)
def test_bad_grids_are_refused_with_a_reason(spec: list[str], message: str) -> None:
    with pytest.raises(sweep.SweepError, match=message):
        sweep.parse_grid(spec)


def test_points_cover_the_product_with_distinct_folders() -> None:
    points = sweep.grid_points({"seed": [0, 1], "lr": [0.1, 1.0, "1"]})
    assert [p.values for p in points[:3]] == [
        {"seed": 0, "lr": 0.1},
        {"seed": 0, "lr": 1.0},
        {"seed": 0, "lr": "1"},
    ]
    assert len(points) == 6
    assert len({p.name for p in points}) == 6  # 1.0 and "1" differ
    assert points[0].describe() == "seed=0, lr=0.1"


# --- running, skipping and failing, with a stand-in for the runner --------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def _fake_runner(calls: list[dict[str, Any]], fail_seed: int | None = None):
    """A stand-in for gi_lib.runner.run_notebook: writes a results file and an
    executed notebook, or fails for one seed, as the runner does."""

    def run_notebook(notebook, *, profile, output, results_dir, extra_parameters, **_):
        calls.append(dict(extra_parameters))
        seed = extra_parameters["seed"]
        if seed == fail_seed:
            raise RunnerError(f"attacks/dlg failed in cell In [3]: seed {seed} broke.")
        write_results(
            "dlg",
            profile=profile,
            parameters=dict(extra_parameters),
            rows=[ResultRow("mnist/lenet/bs1", "psnr", 10.0 + seed)],
            wall_seconds=0.1,
            directory=results_dir,
        )
        Path(output).write_text("{}", encoding="utf-8")
        return Path(output)

    return run_notebook


def test_a_failed_point_is_reported_and_the_others_finish(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("gi_lib.runner.run_notebook", _fake_runner(calls, fail_seed=1))
    result = sweep.run_sweep(
        DLG,
        {"seed": [0, 1, 2]},
        profile="smoke",
        output=tmp_path,
        fixed={"num_trials": 1},
        client=client,
    )
    assert result.counts() == {"done": 2, "skipped": 0, "failed": 1}
    assert all(call["num_trials"] == 1 for call in calls)
    (failed,) = result.failed
    assert failed.point.values == {"seed": 1}
    assert "seed 1 broke" in failed.error
    assert "FAILED seed=1: " in result.report()
    failure = json.loads(
        (sweep.point_dir(tmp_path, failed.point) / sweep.FAILURE_FILE).read_text()
    )
    assert failure["parameters"] == {"seed": 1} and "broke" in failure["error"]
    summary = json.loads((tmp_path / sweep.SUMMARY_FILE).read_text())
    assert [p["status"] for p in summary["points"]] == ["done", "failed", "done"]
    # One table of the finished points, and the figure.
    assert sorted(result.table["seed"]) == [0, 2]
    assert list(result.table["ours"]) == [10.0, 12.0]
    assert (tmp_path / sweep.TABLE_FILE).is_file()
    assert result.figures["psnr"].is_file()


def test_rerunning_skips_the_points_done_and_retries_the_failed(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("gi_lib.runner.run_notebook", _fake_runner(calls, fail_seed=1))
    sweep.run_sweep(
        DLG, {"seed": [0, 1, 2]}, profile="smoke", output=tmp_path, client=client
    )
    calls.clear()
    monkeypatch.setattr("gi_lib.runner.run_notebook", _fake_runner(calls))
    again = sweep.run_sweep(
        DLG, {"seed": [0, 1, 2, 3]}, profile="smoke", output=tmp_path, client=client
    )
    assert sorted(call["seed"] for call in calls) == [1, 3]
    assert [o.status for o in again.outcomes] == ["skipped", "done", "skipped", "done"]
    assert not (
        sweep.point_dir(tmp_path, again.outcomes[1].point) / "failure.json"
    ).exists()
    assert sorted(again.table["seed"]) == [0, 1, 2, 3]
    # A point whose results file is gone is not done: it runs again.
    (sweep.point_dir(tmp_path, again.outcomes[0].point) / "dlg.json").unlink()
    calls.clear()
    sweep.run_sweep(
        DLG, {"seed": [0, 1, 2, 3]}, profile="smoke", output=tmp_path, client=client
    )
    assert [call["seed"] for call in calls] == [0]


def test_unknown_parameters_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(sweep.SweepError, match="does not define"):
        sweep.run_sweep(DLG, {"sed": [0, 1]}, profile="smoke", output=tmp_path)
    with pytest.raises(sweep.SweepError, match="Unknown profile"):
        sweep.run_sweep(DLG, {"seed": [0]}, profile="nope", output=tmp_path)
    with pytest.raises(sweep.SweepError, match="not a swept parameter"):
        sweep.run_sweep(DLG, {"seed": [0]}, profile="smoke", output=tmp_path, x="lr")
    assert not (tmp_path / sweep.POINTS_DIR).exists()


def test_the_command_line_says_what_is_wrong(capsys: pytest.CaptureFixture) -> None:
    code = sweep.main(
        [str(DLG), "--grid", "seed", "--profile", "smoke", "--output", "x"]
    )
    assert code == 2
    assert "NAME=v1,v2" in capsys.readouterr().err


def test_summary_gives_mean_and_spread_per_setting() -> None:
    import pandas as pd

    table = pd.DataFrame(
        {
            "seed": [0, 1, 0, 1],
            "lr": [0.1, 0.1, 1.0, 1.0],
            "experiment": ["a"] * 4,
            "metric": ["psnr"] * 4,
            "ours": [10.0, 12.0, 20.0, 20.0],
        }
    )
    summary = sweep.summarise(table, "psnr", x="lr")
    assert list(summary["mean"]) == [11.0, 20.0]
    assert list(summary["count"]) == [2, 2]
    assert summary["std"].iloc[1] == 0.0
    figure = sweep.plot_sweep(table, "psnr", swept=["seed", "lr"])
    assert figure.axes[0].get_xlabel() == "lr"


# --- the real thing ---------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_sweep_dlg_over_four_seeds(tmp_path: Path) -> None:
    result = sweep.run_sweep(
        DLG,
        {"seed": [0, 1, 2, 3]},
        profile="smoke",
        output=tmp_path,
        workers=2,
    )
    assert result.counts() == {"done": 4, "skipped": 0, "failed": 0}, result.report()
    for outcome in result.outcomes:
        folder = sweep.point_dir(tmp_path, outcome.point)
        record = json.loads((folder / "dlg.json").read_text())
        assert record["profile"] == "smoke"
        assert record["parameters"]["seed"] == outcome.point.values["seed"]
        assert (folder / "dlg.ipynb").is_file()
    psnr = result.table[result.table["metric"] == "psnr"]
    assert sorted(psnr.groupby("experiment")["seed"].apply(sorted).iloc[0]) == [
        0,
        1,
        2,
        3,
    ]
    assert result.figures["psnr"].is_file()
    # Everything is done: a rerun starts no cluster and runs nothing.
    again = sweep.run_sweep(
        DLG, {"seed": [0, 1, 2, 3]}, profile="smoke", output=tmp_path, workers=2
    )
    assert again.counts()["skipped"] == 4
    assert again.table.equals(result.table)


# --- the sweep page's claims ----------------------------------------------------


def _sweep_result(statuses: list[str], values: list[dict[str, Any]], error: str = ""):
    import pandas as pd

    outcomes = [
        sweep.PointOutcome(
            sweep.Point(tuple(v.items())), s, 1.0, error if s == "failed" else ""
        )
        for s, v in zip(statuses, values, strict=True)
    ]
    table = pd.DataFrame(
        {
            "seed": [0, 1],
            "point": ["a", "b"],
            "experiment": ["mnist/lenet/bs1"] * 2,
            "metric": ["psnr"] * 2,
            "ours": [10.0, 14.0],
        }
    )
    return sweep.SweepResult(Path("."), outcomes, table)


def test_the_sweep_pages_claims_follow_the_run() -> None:
    from gi_lib.experiments import dask_sweep
    from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_TESTED

    params = dask_sweep.check(
        {
            "profile": "smoke",
            "dataset": "mnist",
            "model": "lenet",
            "num_trials": 1,
            "seed": 0,
            "device": "auto",
            "num_threads": 1,
            "seeds": "0,1",
            "sweep_profile": "smoke",
            "max_iterations": 4,
            "lr": 1.0,
            "workers": 2,
            "demo_failure": True,
        }
    )
    seeds = [{"seed": 0}, {"seed": 1}]
    lrs = [{"lr": dask_sweep.BAD_LR}, {"lr": 1.0}]
    good = dask_sweep.DaskSweepResult(
        params,
        Path("."),
        _sweep_result(["done", "done"], seeds),
        _sweep_result(["skipped", "skipped"], seeds),
        _sweep_result(["failed", "done"], lrs, "lr must be positive"),
        seconds=10.0,
        rerun_seconds=0.1,
        log="",
    )
    assert [c.verdict for c in dask_sweep.claims(good)] == [HOLDS] * 3
    rows = dask_sweep.rows(good)
    assert rows[0].ours == 12.0 and "2 seeds" in rows[0].note
    assert "skipped 2 points" in dask_sweep.summary_text(good)
    assert "FAILED lr=-1.0" in dask_sweep.failure_text(good)
    bad = dask_sweep.DaskSweepResult(
        params,
        Path("."),
        _sweep_result(["done", "failed"], seeds),
        _sweep_result(["skipped", "done"], seeds),
        None,
        seconds=10.0,
        rerun_seconds=5.0,
        log="",
    )
    verdicts = [c.verdict for c in dask_sweep.claims(bad)]
    assert verdicts == [DOES_NOT_HOLD, DOES_NOT_HOLD, NOT_TESTED]
