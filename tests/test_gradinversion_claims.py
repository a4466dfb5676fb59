"""The GradInversion page's claims and rows on a synthetic result."""

from __future__ import annotations

import pytest
import torch

from gi_lib.experiments import gradinversion as experiment
from gi_lib.params import ParameterError
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_ENOUGH_TRIALS, NOT_TESTED

BASE = {
    "profile": "smoke",
    "dataset": "cifar10",
    "model": "smallconv16",
    "num_trials": 3,
    "seed": 0,
    "device": "cpu",
    "num_threads": 1,
    "batch_size": 4,
    "max_iterations": 10,
    "lr": 0.3,
    "warmup": 2,
    "gradient_weight": 1.0,
    "tv_weight": 1e-4,
    "l2_weight": 1e-6,
    "bn_weight": 0.1,
    "first_bn_multiplier": 10.0,
    "noise": 0.2,
    "group_seeds": 3,
    "group_weight": 0.01,
    "group_start": 0.25,
    "group_every": 5,
    "max_shift": 3,
    "ig_tv_weight": 0.01,
    "train_epochs": 1,
    "train_images": 256,
    "train_lr": 0.01,
    "label_models": "smallconv16",
    "label_images": 200,
    "label_batches": 5,
    "unique_sizes": "1,8",
    "random_sizes": "2,16",
    "num_shown": 1,
}

# Arm -> PSNR offset: fidelity with exact statistics beats the gradient loss
# alone, running statistics beat exact ones (so that claim fails), and the
# group arms are indistinguishable from one seed.
OFFSETS = {
    "gradient only": 0.0,
    "+ fidelity (BN_approx)": 3.0,
    "+ fidelity (BN_exact)": 1.0,
    "BN_exact only": -1.0,
    "Inverting Gradients": 2.0,
    "+ group (lazy)": 1.0,
    "+ group (registered)": 1.0,
    "seeds without group term": 1.0,
}


def _result() -> experiment.GradInversionRun:
    params = experiment.check(BASE)
    generator = torch.Generator().manual_seed(0)
    attacked = []
    for trial in range(3):
        noise = [float(v) for v in torch.randn(4, generator=generator)]
        for arm, offset in OFFSETS.items():
            jitter = (
                [0.01 * ((i + trial) % 3 - 1) for i in range(4)]
                if arm in experiment.GROUP_ARMS
                else [0.0] * 4
            )
            attacked.append(
                experiment.Attacked(
                    arm=arm,
                    trial=trial,
                    images=torch.zeros(4, 3, 32, 32),
                    psnr=[
                        10 + offset + n + j for n, j in zip(noise, jitter, strict=True)
                    ],
                    label_accuracy=1.0,
                    seconds=1.0,
                )
            )
    points = [
        experiment.LabelPoint(
            "smallconv16 (trained)",
            "unique",
            8,
            {
                "row_min": [1.0] * 20,
                "row_sum": [0.75 + 0.05 * (i % 3) for i in range(20)],
                "count_aware": [1.0] * 20,
            },
            1.0,
        )
    ]
    return experiment.GradInversionRun(
        params=params,
        device=torch.device("cpu"),
        label_points=points,
        trained_accuracy=0.4,
        truths=[torch.zeros(4, 3, 32, 32)] * 3,
        labels=[torch.arange(4)] * 3,
        attacked=attacked,
        bn_recovery_error=1e-7,
        lpips_measured=False,
        seconds={},
    )


def test_claims_come_out_with_the_right_verdicts() -> None:
    verdicts = [c.verdict for c in experiment.claims(_result())]
    assert verdicts == [
        HOLDS,  # row-min beats row-sum
        HOLDS,  # fidelity (exact) beats the gradient alone
        DOES_NOT_HOLD,  # exact does not beat running statistics here
        NOT_ENOUGH_TRIALS,  # lazy group equals one seed within the spread
        NOT_ENOUGH_TRIALS,  # registered group likewise
        NOT_ENOUGH_TRIALS,  # the book's control
        NOT_TESTED,  # no best-seed images in the synthetic run
        NOT_TESTED,  # LPIPS not measured offline
    ]


def test_rows_quote_paper_values_with_source_and_confidence() -> None:
    rows = experiment.rows(_result())
    quoted = [r for r in rows if r.paper is not None]
    assert {r.paper for r in quoted} >= {0.9956, 0.9589, 10.753, 12.058}
    for row in quoted:
        assert row.paper_source and "Yin et al." in row.paper_source
        assert row.paper_confidence == "S"
    # The count-aware rule and the controls have no paper value.
    assert all(
        r.paper is None
        for r in rows
        if "count_aware" in r.experiment or "without group" in r.experiment
    )


def test_check_refuses_unique_batches_larger_than_the_classes() -> None:
    with pytest.raises(ParameterError, match="classes"):
        experiment.check({**BASE, "unique_sizes": "1,12"})
    with pytest.raises(ParameterError, match="classes"):
        experiment.check({**BASE, "batch_size": 11})


def test_tables_and_text_of_a_synthetic_run() -> None:
    result = _result()
    frame = experiment.ablation_frame(result)
    assert list(frame["arm"]) == [*experiment.ARMS, *experiment.GROUP_ARMS]
    assert "smallconv16" in experiment.summary_text(result)
    assert len(experiment.label_frame(result)) == 1


def test_verdicts_text_names_every_claim_and_its_verdict() -> None:
    result = _result()
    checked = experiment.claims(result)
    text = experiment.verdicts_text(result, checked)
    for claim in checked:
        assert claim.claim in text and claim.verdict in text


def test_history_figure_draws_every_arm() -> None:
    result = _result()
    for record in result.attacked:
        record.history = [(0.0, 9.0), (10.0, 12.0)]
    figure = experiment.history_figure(result)
    assert len(figure.axes[0].lines) == len(OFFSETS)
