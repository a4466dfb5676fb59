"""The HE page's rows and claims on synthetic results: Table 3 values carry
their source and confidence only where our parameters are the paper's, and
the verdicts follow the numbers."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest

from gi_lib.defenses import he
from gi_lib.experiments import he as experiment
from gi_lib.params import ParameterError
from gi_lib.results import DOES_NOT_HOLD, HOLDS, NOT_ENOUGH_TRIALS, NOT_TESTED

CPU = {
    "profile": "cpu",
    "dataset": "mnist",
    "model": "mlp",
    "num_trials": 3,
    "seed": 0,
    "device": "auto",
    "num_threads": 1,
    "frac_bits": 24,
    "clip": 8.0,
    "lwe_n": 3000,
    "lwe_block": 4096,
    "lwe_sizes": "20000,30000",
    "paillier_key_bits": 2048,
    "paillier_sizes": "500",
    "ckks_poly_degree": 8192,
    "ckks_sizes": "20000",
    "bfv_poly_degree": 8192,
    "bfv_sizes": "20000",
    "timing_repeats": 1,
    "harness_clients": 3,
    "harness_size": 100,
    "train_participants": 4,
    "train_images": 800,
    "train_batch_size": 100,
    "train_epochs": 1,
    "train_lr": 0.1,
    "test_images": 100,
    "attack_iterations": 10,
}


def _cost(backend: str, size: int) -> he.OperationCost:
    return he.OperationCost(backend, size, 0.2, 1e-4, 0.15, 10 * size, 4 * size, 1)


def _trial(plain: float, leaked: float, cipher: float, unrelated: float):
    return experiment.AttackTrial(
        plaintext=SimpleNamespace(psnr=plain),
        leaked=SimpleNamespace(psnr=leaked),
        ciphertext=SimpleNamespace(psnr=cipher),
        unrelated_psnr=unrelated,
        leak_exact=True,
        leak_error=1e-8,
    )


def _result(
    *,
    gap: float = 0.0,
    cipher: tuple[float, ...] = (7.9, 8.1, 8.0),
    trials: int = 3,
    **overrides,
) -> experiment.HERun:
    params = experiment.check({**CPU, **overrides})
    training = experiment.Training(
        accuracy={"plaintext": 0.9, "fixed point": 0.9, "encrypted": 0.9 + gap},
        uploads=8,
        identical_to_fixed_point=True,
        max_weight_difference=1e-7,
        participant_seconds=0.3,
        server_seconds=0.01,
        upload_bytes=10,
        download_bytes=10,
    )
    attacked = [_trial(40.0 + i, 40.0 + i, cipher[i], 8.0) for i in range(trials)]
    costs = [_cost("lwe", 20000), _cost("lwe", 30000), _cost("paillier", 500)]
    return experiment.HERun(params, costs, [], training, attacked, {})


def test_claims_hold_when_accuracy_is_kept_and_the_ciphertext_gives_nothing():
    verdicts = [c.verdict for c in experiment.claims(_result())]
    assert verdicts == [HOLDS, HOLDS, HOLDS, NOT_TESTED]


def test_an_accuracy_drop_does_not_hold():
    accuracy = experiment.claims(_result(gap=-0.05))[0]
    assert accuracy.verdict == DOES_NOT_HOLD
    assert "bit for bit" in accuracy.evidence


def test_a_ciphertext_that_inverts_does_not_hold():
    server = experiment.claims(_result(cipher=(30.0, 31.0, 32.0)))[2]
    assert server.verdict == DOES_NOT_HOLD


def test_one_trial_is_not_enough_for_the_attack_claims():
    claims = experiment.claims(_result(trials=1, num_trials=1))
    assert [c.verdict for c in claims[1:3]] == [NOT_ENOUGH_TRIALS] * 2


def test_table3_values_are_cited_only_at_its_sizes_and_parameters():
    rows = experiment.rows(_result())
    cited = [r for r in rows if r.paper is not None and math.isfinite(r.ours)]
    assert {r.experiment.split(", n_gd = ")[1] for r in cited} == {"20000"}
    assert len(cited) == 3  # Enc, Dec, Add at 20,000
    for row in cited:
        assert row.metric == "seconds" and row.paper_confidence == "T"
        assert "Table 3" in row.paper_source and "factor of 3" in row.note
    enc = next(r for r in cited if ": Enc," in r.experiment)
    assert enc.paper == pytest.approx(0.1644)
    add = next(r for r in cited if ": Add," in r.experiment)
    assert add.paper == pytest.approx(51e-6)
    other = experiment.rows(_result(lwe_n=256))
    assert all(r.paper is None for r in other if math.isfinite(r.ours))


def test_the_20_thread_column_and_the_estimate_are_listed_as_not_run():
    rows = experiment.rows(_result())
    listed = [r for r in rows if r.paper is not None and math.isnan(r.ours)]
    assert len(listed) == 8 * 3 + 1  # every size and operation, and the estimate
    assert all(r.note.startswith("not run here") for r in listed)
    assert all(r.paper_confidence == "T" for r in listed)
    enc = next(
        r for r in listed if r.experiment.endswith("Enc, n_gd = 100000 (20 threads)")
    )
    assert enc.paper == pytest.approx(0.1889)
    assert any(r.paper == pytest.approx(0.4055) for r in listed)


def test_every_row_has_a_known_metric_and_the_attack_rows_are_there():
    rows = experiment.rows(_result())
    metrics = {r.metric for r in rows}
    assert metrics == {"seconds", "bytes", "test_accuracy", "psnr"}
    assert sum(r.metric == "psnr" for r in rows) == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train_participants": 1}, "at least 2"),
        ({"ckks_poly_degree": 5000}, "4096, 8192"),
        ({"bfv_poly_degree": 5000}, "bfv_poly_degree must be"),
        ({"train_images": 100}, "at least one mini-batch"),
        ({"model": "lenet"}, "model"),
    ],
)
def test_bad_parameters_are_refused(override, message):
    with pytest.raises(ParameterError, match=message):
        experiment.check({**CPU, **override})


def test_the_mlp_has_the_papers_mnist_gradient_size():
    from gi_lib import data

    net = experiment.build_mlp(data.dataset_info("mnist"), seed=0)
    assert sum(p.numel() for p in net.parameters()) == experiment.MNIST_NGD == 109386


def test_summary_quotes_the_run():
    result = _result()
    result = dataclasses.replace(result, trials=[])
    text = experiment.summary_text(result)
    assert "30,000 values" in text and "identical" in text


def test_table3_comparison_is_in_the_tables_units():
    rows = experiment.table3_comparison(_result())
    assert [(r["n_gd"], r["operation"]) for r in rows] == [
        (20000, "Enc"),
        (20000, "Dec"),
        (20000, "Add"),
    ]
    enc = rows[0]
    assert enc["unit"] == "ms" and enc["paper (1 thread)"] == 164.4
    assert enc["ours (1 thread)"] == 200.0 and enc["within x3"]
    add = rows[2]
    assert add["unit"] == "µs" and add["ours (1 thread)"] == 100.0 and add["within x3"]
    assert experiment.table3_comparison(_result(lwe_n=256)) == []
