"""Results rows against the paper's band, and claims with verdicts from trials."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    Claim,
    PaperValue,
    ResultRow,
    bound_claim,
    paired_claim,
    paper_band,
    spread,
    untested_claim,
    within_band,
    write_results,
)

# --- paper values -------------------------------------------------------------


def test_a_paper_value_needs_a_source_and_a_known_confidence_label() -> None:
    with pytest.raises(TypeError):
        PaperValue(0.9, "Table 1")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="confidence 'X'"):
        PaperValue(0.9, "Table 1", "X")
    with pytest.raises(ValueError, match="source"):
        PaperValue(0.9, "", "P")
    with pytest.raises(ValueError, match="confidence label"):
        ResultRow("e", "psnr", 20.0, paper=21.0, paper_source="Table 1")


def test_a_row_keeps_the_label_and_tolerance_of_its_paper_value() -> None:
    row = ResultRow.against("e", "psnr", 20.0, PaperValue(21.0, "Tab. 1", "S", 0.5))
    assert (row.paper, row.paper_source, row.paper_confidence) == (21.0, "Tab. 1", "S")
    assert paper_band(row) == (20.5, 21.5)
    assert within_band(row) is False
    assert within_band(ResultRow.against("e", "psnr", 20.0, None)) is None


@pytest.mark.parametrize(
    ("metric", "paper", "ours", "inside"),
    [
        ("psnr", 18.0, 16.5, True),  # 2 dB either side
        ("psnr", 18.0, 15.9, False),
        ("test_accuracy", 0.95, 0.935, True),  # 0.02 either side
        ("test_accuracy", 0.95, 0.92, False),
        ("epsilon", 2.0, 2.09, True),  # 5 % either side
        ("epsilon", 2.0, 2.2, False),
        ("seconds", 10.0, 29.0, True),  # within a factor of 3
        ("seconds", 10.0, 31.0, False),
    ],
)
def test_default_bands_per_metric(
    metric: str, paper: float, ours: float, inside: bool
) -> None:
    row = ResultRow.against("e", metric, ours, PaperValue(paper, "Tab. 1", "T"))
    assert within_band(row) is inside


def test_results_file_holds_rows_labels_and_claims(tmp_path: Path) -> None:
    claim = untested_claim("X beats Y", "Sec. 3", "needs a GPU")
    path = write_results(
        "page",
        profile="smoke",
        parameters={"seed": 0},
        rows=[ResultRow.against("e", "psnr", 20.0, PaperValue(21.0, "Tab. 1", "P"))],
        claims=[claim],
        wall_seconds=1.0,
        directory=tmp_path,
    )
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["rows"][0]["paper_confidence"] == "P"
    assert record["claims"] == [
        {
            "claim": "X beats Y",
            "source": "Sec. 3",
            "verdict": "not tested",
            "evidence": "needs a GPU",
        }
    ]


# --- spread and claims ----------------------------------------------------------


def test_spread_is_the_t_interval_of_the_mean() -> None:
    s = spread([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.sd == 1.0 and s.n == 3
    # t(0.975, 2 dof) = 4.303; half-width 4.303 / sqrt(3)
    assert s.high - s.mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    one = spread([5.0])
    assert one.n == 1 and math.isnan(one.low)
    assert "1 trial" in one.describe()
    with pytest.raises(ValueError):
        spread([1.0, math.nan])


def test_a_clear_paired_difference_holds() -> None:
    better = [20.0, 25.0, 22.0, 30.0, 18.0]
    worse = [b - 5.0 + 0.1 * i for i, b in enumerate(better)]
    claim = paired_claim("A beats B", "Fig. 1", better, worse, names=("A", "B"))
    assert claim.verdict == HOLDS
    assert "5 trials" in claim.evidence and "A: " in claim.evidence


def test_the_reverse_of_a_clear_difference_does_not_hold() -> None:
    better = [20.0, 25.0, 22.0, 30.0]
    worse = [b + 3.0 + 0.2 * i for i, b in enumerate(better)]
    claim = paired_claim("A beats B", "Fig. 1", better, worse, names=("A", "B"))
    assert claim.verdict == DOES_NOT_HOLD


def test_no_difference_or_too_few_trials_is_not_enough_to_tell() -> None:
    noise = [0.5, -0.4, 0.3, -0.6, 0.1, -0.2]
    worse = [20.0 + 3 * i for i in range(6)]
    better = [w + n for w, n in zip(worse, noise, strict=True)]
    claim = paired_claim("A beats B", "Fig. 1", better, worse, names=("A", "B"))
    assert claim.verdict == NOT_ENOUGH_TRIALS
    # Two trials with a large, consistent gap still cannot estimate a spread.
    two = paired_claim("A beats B", "Fig. 1", [30, 31], [10, 10], names=("A", "B"))
    assert two.verdict == NOT_ENOUGH_TRIALS
    assert "3 trials are needed" in two.evidence


def test_a_margin_raises_the_bar() -> None:
    better = [21.0, 22.0, 23.0, 24.0]
    worse = [20.0, 21.1, 21.9, 23.0]  # about 1 dB better, tightly
    assert paired_claim("c", "s", better, worse, names=("a", "b")).verdict == HOLDS
    claim = paired_claim("c", "s", better, worse, names=("a", "b"), margin=3.0)
    assert claim.verdict == DOES_NOT_HOLD


def test_paired_claims_need_pairs() -> None:
    with pytest.raises(ValueError, match="differ in number"):
        paired_claim("c", "s", [1.0, 2.0], [1.0], names=("a", "b"))
    assert paired_claim("c", "s", [], [], names=("a", "b")).verdict == NOT_TESTED


def test_bound_claims_on_one_run_and_on_trials() -> None:
    one = bound_claim("accuracy at least 0.9", "Tab. 1", [0.93], above=0.9)
    assert one.verdict == HOLDS and "1 trial" in one.evidence
    assert bound_claim("c", "s", [0.85], above=0.9).verdict == DOES_NOT_HOLD
    tight = [10.0, 10.2, 9.9, 10.1]
    assert bound_claim("c", "s", tight, below=15.0).verdict == HOLDS
    assert bound_claim("c", "s", tight, below=8.0).verdict == DOES_NOT_HOLD
    wide = [5.0, 15.0, 7.0, 14.0]
    assert bound_claim("c", "s", wide, below=12.0).verdict == NOT_ENOUGH_TRIALS
    assert bound_claim("c", "s", [11.0], above=10, below=12).verdict == HOLDS
    with pytest.raises(ValueError, match="give a bound"):
        bound_claim("c", "s", [1.0])


def test_an_every_trial_bound_is_judged_on_the_worst_trial():
    # The mean (63) is far above 40 dB, but one image is not exact.
    assert bound_claim(
        "c", "s", [100, 90, 0.0], above=40, every_trial=True
    ).verdict == (DOES_NOT_HOLD)
    held = bound_claim(
        "c", "s", [100, 47, 99], above=40, unit="dB", what="w", every_trial=True
    )
    assert held.verdict == HOLDS
    assert "lowest 47 dB" in held.evidence and "3 trials" in held.evidence
    assert (
        bound_claim("c", "s", [9, 8, 41], below=40, every_trial=True).verdict
        == DOES_NOT_HOLD
    )
    assert bound_claim("c", "s", [9, 8], below=40, every_trial=True).verdict == HOLDS
    assert "1 trial)" in bound_claim("c", "s", [9], below=40, every_trial=True).evidence
    assert bound_claim("c", "s", [], above=40, every_trial=True).verdict == NOT_TESTED
    both = bound_claim("c", "s", [1.5, 1.9], above=1, below=2, every_trial=True)
    assert both.verdict == HOLDS and "lowest 1.5" in both.evidence
    assert "highest 1.9" in both.evidence


def test_a_claim_has_a_known_verdict_and_its_words() -> None:
    with pytest.raises(ValueError, match="Unknown verdict"):
        Claim("c", "s", "probably", "e")
    with pytest.raises(ValueError, match="source"):
        Claim("c", " ", HOLDS, "e")


def test_every_metric_has_a_default_band() -> None:
    from gi_lib.results import DEFAULT_BANDS, METRICS

    assert set(DEFAULT_BANDS) == set(METRICS)


def test_the_rows_table_keeps_small_numbers_visible() -> None:
    from gi_lib.results import rows_frame

    row = ResultRow.against("add", "seconds", 1.56e-4, PaperValue(5.1e-5, "T3", "T"))
    frame = rows_frame([row])
    assert frame.loc[0, "ours"] == 1.56e-4 and frame.loc[0, "paper"] == 5.1e-5
    assert frame.loc[0, "paper source"] == "T3 [T]"
