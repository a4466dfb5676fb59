"""The DLG, iDLG and R-GAP pages' claims and paper rows, on synthetic results.

Each run below is built by hand with chosen PSNRs, labels and timings, so the
verdicts they must give are known without attacking anything.
"""

from __future__ import annotations

import pytest
import torch

from gi_lib.attacks import rgap as rgap_attack
from gi_lib.experiments import dlg, idlg, rgap
from gi_lib.experiments.attack_claims import (
    NEAR_EXACT_PSNR,
    PSNR_CEILING,
    labels_right,
    psnrs,
)
from gi_lib.experiments.common import AttackedSample, Score
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    PAPERS_OWN,
)

CPU = torch.device("cpu")
SINGLE_IMAGE = dict(
    profile="smoke",
    model="lenet",
    seed=0,
    device="cpu",
    num_threads=1,
    max_iterations=300,
    lr=1.0,
    success_psnr=30.0,
    num_shown=1,
)


def _sample(
    psnr: float,
    *,
    setting: str = "dlg",
    index: int = 0,
    label_right: bool = True,
    seconds: float = 1.0,
) -> AttackedSample:
    """A one-image record with the given PSNR (and matching MSE), label and time."""
    image = torch.zeros(1, 1, 4, 4)
    mse = torch.tensor([10 ** (-psnr / 10)])
    return AttackedSample(
        setting=setting,
        index=index,
        true_images=image,
        images=image,
        score=Score(
            order=torch.arange(1),
            psnr=torch.tensor([psnr]),
            ssim=torch.tensor([1.0]),
            mse=mse,
            lpips=None,
        ),
        seconds=seconds,
        labels=torch.tensor([3 if label_right else 4]),
        true_labels=torch.tensor([3]),
    )


def _verdicts(claims) -> dict[str, str]:
    return {c.claim: c.verdict for c in claims}


# ---------------------------------------------------------------------------
# The helpers
# ---------------------------------------------------------------------------


def test_psnrs_are_capped_and_exact_images_stay_finite():
    samples = [_sample(25.0), _sample(55.0), _sample(float("inf"))]
    assert psnrs(samples) == [25.0, 55.0, PSNR_CEILING]
    assert psnrs(samples, ceiling=NEAR_EXACT_PSNR) == [25.0, 40.0, 40.0]
    with pytest.raises(ValueError, match="NaN"):
        psnrs([_sample(float("nan"))])


def test_labels_right_per_trial():
    assert labels_right([_sample(9.0), _sample(9.0, label_right=False)]) == [1.0, 0.0]


# ---------------------------------------------------------------------------
# DLG
# ---------------------------------------------------------------------------


def _dlg_run(trials: dict[str, list[AttackedSample]]) -> dlg.DLGRun:
    params = dlg.check({**SINGLE_IMAGE, "dataset": ",".join(trials), "num_trials": 6})
    return dlg.DLGRun(params=params, device=CPU, snapshots=(0,), trials=trials)


def test_dlg_claims_per_data_set():
    run = _dlg_run(
        {
            # All recovered, every label right.
            "mnist": [_sample(60.0 + i, index=i) for i in range(6)],
            # All failed, every label wrong.
            "cifar10": [
                _sample(12.0 + i, index=i, label_right=False) for i in range(6)
            ],
        }
    )
    claims = dlg.claims(run)
    by_data = {
        name: [c for c in claims if f"({name}" in c.claim]
        for name in ("mnist", "cifar10")
    }
    assert [c.verdict for c in by_data["mnist"]] == [HOLDS, HOLDS]
    assert [c.verdict for c in by_data["cifar10"]] == [DOES_NOT_HOLD, DOES_NOT_HOLD]
    assert "image recovered (1 or 0): 1" in by_data["mnist"][0].evidence
    untested = [c for c in claims if c.verdict == NOT_TESTED]
    assert len(untested) == 3 and all(c.evidence for c in untested)
    assert all(c.source for c in claims)


def test_dlg_one_failure_in_six_leaves_the_image_claim_open():
    # Five of six recovered: the interval of the share recovered still
    # reaches below one half, so the trials cannot tell.
    trials = [_sample(70.0, index=i) for i in range(5)] + [_sample(12.0, index=5)]
    claims = dlg.claims(_dlg_run({"mnist": trials}))
    assert claims[0].verdict == NOT_ENOUGH_TRIALS


def test_dlg_claims_text_says_what_the_verdicts_rest_on():
    trials = [_sample(60.0 + i, index=i) for i in range(4)]
    trials += [_sample(3.0, index=4), _sample(3.5, index=5)]
    text = dlg.claims_text(_dlg_run({"mnist": trials}))
    assert "4 of 6 images reached 30 dB or more (the lowest of them 60.0 dB)" in text
    assert "the other 2 at most 3.5 dB" in text
    assert "left open on mnist" in text
    held = dlg.claims_text(_dlg_run({"mnist": trials[:4]}))
    assert "holds on mnist" in held and "other" not in held


def test_dlg_label_row_quotes_idlg_table_1_for_dlg():
    run = _dlg_run(
        {
            "mnist": [_sample(50.0, index=i) for i in range(3)],
            "cifar10": [_sample(50.0, index=i) for i in range(3)],
        }
    )
    rows = {(r.experiment, r.metric): r for r in dlg.rows(run)}
    mnist = rows[("mnist/lenet/bs1", "label_accuracy")]
    assert mnist.paper == pytest.approx(0.899)
    assert "iDLG" in mnist.paper_source and "Table 1" in mnist.paper_source
    assert mnist.paper_confidence in PAPERS_OWN
    # No CIFAR-10 column in the paper, and no PSNR anywhere.
    assert rows[("cifar10/lenet/bs1", "label_accuracy")].paper is None
    assert all(r.paper is None for r in rows.values() if r.metric != "label_accuracy")


# ---------------------------------------------------------------------------
# iDLG
# ---------------------------------------------------------------------------


def _idlg_run(
    pairs: dict[str, list[tuple[float, bool, float, bool]]],
    analytic: dict[str, tuple[float, int]],
) -> idlg.IDLGRun:
    """``pairs[data set]``: per image, (DLG PSNR, DLG label right, iDLG PSNR,
    iDLG label right)."""
    params = idlg.check(
        {
            **SINGLE_IMAGE,
            "dataset": ",".join(pairs),
            "num_trials": 5,
            "stop_loss": 1e-6,
            "num_label_images": 100,
        }
    )
    trials = {
        name: [
            sample
            for i, (dp, dl, ip, il) in enumerate(images)
            for sample in (
                _sample(dp, setting="dlg", index=i, label_right=dl),
                _sample(ip, setting="idlg", index=i, label_right=il),
            )
        ]
        for name, images in pairs.items()
    }
    return idlg.IDLGRun(
        params=params, device=CPU, trials=trials, analytic_label_accuracy=analytic
    )


def test_idlg_claims_from_paired_trials():
    # DLG fails on most images and gets half the labels wrong; iDLG is exact.
    pairs = {
        "mnist": [(10.0 + i, i % 2 == 0, 60.0, True) for i in range(5)],
        "lfw": [(12.0 + i, i % 2 == 1, 45.0, True) for i in range(5)],
    }
    run = _idlg_run(pairs, {"mnist": (1.0, 100), "lfw": (0.99, 100)})
    claims = idlg.claims(run)
    rule = [c for c in claims if "rule" in c.claim]
    # Every label right holds; one wrong label in 100 is a counterexample.
    assert [c.verdict for c in rule] == [HOLDS, DOES_NOT_HOLD]
    assert "99 of 100" in rule[1].evidence
    labels, quality = claims[-2:]
    assert labels.verdict == HOLDS and quality.verdict == HOLDS
    assert "10 images pooled over mnist, lfw" in quality.evidence


def test_idlg_exact_reconstructions_tie():
    # Both exact on every image (different decibels above 40 dB): no
    # difference to see, so the trials cannot tell.
    pairs = {"mnist": [(70.0 + i, True, 50.0, True) for i in range(5)]}
    claims = idlg.claims(_idlg_run(pairs, {"mnist": (1.0, 100)}))
    labels, quality = claims[-2:]
    assert labels.verdict == NOT_ENOUGH_TRIALS
    assert quality.verdict == NOT_ENOUGH_TRIALS


def test_idlg_pairs_the_same_images():
    pairs = {"mnist": [(10.0 + i, True, 20.0 + i, True) for i in range(3)]}
    dlg_trials, idlg_trials = idlg.paired_trials(_idlg_run(pairs, {}))
    assert [t.index for t in dlg_trials] == [t.index for t in idlg_trials]
    assert {t.setting for t in dlg_trials} == {"dlg"}
    assert [t.psnr for t in idlg_trials] == [20.0, 21.0, 22.0]


def test_idlg_rows_quote_table_1_with_source_and_label():
    pairs = {
        "mnist": [(30.0, True, 30.0, True)] * 3,
        "cifar10": [(30.0, True, 30.0, True)] * 3,
    }
    run = _idlg_run(pairs, {"mnist": (1.0, 100), "cifar10": (1.0, 100)})
    rows = {(r.experiment, r.metric): r for r in idlg.rows(run)}
    expected = {"mnist/lenet/bs1/dlg": 0.899, "mnist/lenet/bs1/idlg": 1.0}
    for experiment, value in expected.items():
        row = rows[(experiment, "label_accuracy")]
        assert row.paper == pytest.approx(value)
        assert row.paper_source == "iDLG, Table 1 (authors' README)"
        assert row.paper_confidence == "P"
    assert rows[("mnist/lenet/bs1/idlg-analytic", "label_accuracy")].paper == 1.0
    assert rows[("cifar10/lenet/bs1/dlg", "label_accuracy")].paper is None


# ---------------------------------------------------------------------------
# R-GAP
# ---------------------------------------------------------------------------


def _rgap_run(
    full: list[tuple[float, float]], deficient: list[tuple[float, float]]
) -> rgap.RGAPRun:
    """Per image, (R-GAP PSNR, DLG PSNR) on CNN6 and on CNN6-d; R-GAP takes
    1 s per image, DLG 8 s."""
    params = rgap.check(
        dict(
            profile="smoke",
            dataset="cifar10",
            model="cnn6",
            num_trials=len(full),
            seed=0,
            device="cpu",
            num_threads=1,
            deficient_model="cnn6d",
            dlg_iterations=50,
            sweep_widths="12",
            sweep_strides="1",
            sweep_images=1,
            success_psnr=30.0,
        )
    )
    attacks = [
        rgap.RGAPTrial(
            network=name,
            rgap=_sample(r, setting="rgap", index=i, seconds=1.0),
            layers=[],
            dlg=_sample(d, index=i, seconds=8.0),
        )
        for name, trials in (("cnn6", full), ("cnn6d", deficient))
        for i, (r, d) in enumerate(trials)
    ]
    counts = {
        name: [
            rgap_attack.LayerCount(
                index=0,
                kind="conv",
                input_shape=(3, 32, 32),
                unknowns=10,
                weight_constraints=5,
                gradient_constraints=5,
                shared=shared,
            )
        ]
        for name, shared in (("cnn6", 0), ("cnn6d", 3))
    }
    return rgap.RGAPRun(params=params, device=CPU, attacks=attacks, counts=counts)


def test_rgap_claims_on_full_rank_and_deficient_networks():
    run = _rgap_run(
        full=[(101.7, 11.0), (47.2, 12.5), (float("inf"), 10.0)],
        deficient=[(9.3, 10.0), (7.8, 11.0), (7.9, 9.0)],
    )
    claims = rgap.claims(run)
    exact, versus, rank_deficient, speed = claims
    assert "(cnn6)" in exact.claim and exact.verdict == HOLDS
    assert "lowest 47.2 dB" in exact.evidence
    assert versus.verdict == HOLDS and "DLG ran 50 L-BFGS steps" in versus.evidence
    assert "cnn6d" in rank_deficient.claim and rank_deficient.verdict == HOLDS
    assert speed.verdict == HOLDS and "6 trials" in speed.evidence


def test_rgap_claims_catch_a_failed_full_rank_image_and_an_exact_deficient_one():
    run = _rgap_run(
        full=[(101.7, 11.0), (20.0, 12.5), (99.0, 10.0)],
        deficient=[(9.3, 10.0), (55.0, 11.0), (7.9, 9.0)],
    )
    verdicts = [c.verdict for c in rgap.claims(run)]
    assert verdicts[0] == DOES_NOT_HOLD and verdicts[2] == DOES_NOT_HOLD


def test_rgap_pairs_need_three_images():
    run = _rgap_run(full=[(80.0, 11.0), (90.0, 12.0)], deficient=[(9.0, 8.0)] * 2)
    versus = rgap.claims(run)[1]
    assert versus.verdict == NOT_ENOUGH_TRIALS


def test_idlg_claims_text_counts_the_pairs():
    pairs = {"mnist": [(10.0 + i, i % 2 == 0, 60.0, True) for i in range(5)]}
    text = idlg.claims_text(_idlg_run(pairs, {"mnist": (1.0, 100)}))
    assert "Over the 5 images both attacks ran on" in text
    assert "iDLG named 5 labels right and DLG 3" in text
    assert "iDLG's image was better on 5, DLG's on 0, and 0 tied" in text
    assert "the claim on reconstructions holds" in text


def test_rgap_claims_text_names_each_network_and_verdict():
    run = _rgap_run(
        full=[(101.7, 11.0), (47.2, 12.5), (99.0, 10.0)],
        deficient=[(9.3, 10.0), (7.8, 11.0), (7.9, 9.0)],
    )
    text = rgap.claims_text(run)
    assert "R-GAP's lowest PSNR over 3 images was 47.2 dB" in text
    assert "DLG's highest 12.5 dB" in text
    assert "highest was 9.3 dB and DLG's 11.0 dB" in text
    assert "exact recovery on cnn6 holds" in text
    assert text.endswith("and the time claim holds.")
