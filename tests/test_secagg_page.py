"""The SecAgg page's driver: rows quote the paper with source and
confidence, claims come out with the right verdicts on synthetic results,
and a smoke-sized run produces every part of the page."""

import math

import pytest
import torch

from gi_lib.experiments import secagg as experiment
from gi_lib.results import DOES_NOT_HOLD, HOLDS, METRICS, NOT_ENOUGH_TRIALS, NOT_TESTED

SMOKE = {
    "profile": "smoke",
    "dataset": "cifar10",
    "model": "smallconv16",
    "num_trials": 1,
    "seed": 0,
    "device": "cpu",
    "num_threads": 1,
    "client_counts": "6,9",
    "dropouts": "0,0.3",
    "plus_dropouts": "0",
    "vector_size": 300,
    "ring_bits": 32,
    "frac_bits": 16,
    "clip": 1.0,
    "validation_clients": "5",
    "validation_size": 64,
    "tolerance_clients": "6",
    "attack_clients": 2,
    "attack_clip": 8.0,
    "max_iterations": 1,
    "num_shown": 1,
}


def _point(protocol, n, dropout, client, server, aborted=False):
    return experiment.CostPoint(
        protocol=protocol,
        num_clients=n,
        dropout=dropout,
        degree=None,
        threshold=-(-2 * n // 3),
        dropped=round(dropout * n),
        aborted=aborted,
        client_seconds=client,
        server_seconds=server,
        server_unmask_seconds=server / 2,
        client_bytes=1000.0,
        modelled_seconds=1.0,
    )


def _trial(plain, masked):
    image = torch.zeros(3, 4, 4)
    return experiment.AttackTrial(plain, masked, 8.0, 0, 10, (image,) * 4)


def _synthetic(server_power=2.0, plain=(15.0, 16.0, 14.5), masked=(7.0, 7.5, 6.8)):
    params = experiment.check(SMOKE)
    run = experiment.SecAggRun(params=params, device="cpu")
    run.expansions = experiment.paper_expansions()
    run.tolerance = [experiment.ToleranceCheck(9, 6, 3, True, True, "stops")]
    for dropout in (0.0, 0.3):
        for n in (10, 20, 40, 80):
            power = server_power if dropout else 1.0
            run.costs.append(_point("secagg", n, dropout, 1e-3 * n, 1e-4 * n**power))
    run.trials = [_trial(p, m) for p, m in zip(plain, masked, strict=True)]
    return run


def _by_start(claims, start):
    (claim,) = [c for c in claims if c.claim.startswith(start)]
    return claim


def test_claims_on_a_synthetic_run():
    claims = experiment.claims(_synthetic())
    assert (
        _by_start(
            claims, "For 16-bit inputs, the protocol's communication expansion is 1.73"
        ).verdict
        == HOLDS
    )
    assert (
        _by_start(
            claims, "For 16-bit inputs, the protocol's communication expansion is 1.98"
        ).verdict
        == HOLDS
    )
    assert _by_start(claims, "The protocol tolerates").verdict == HOLDS
    assert (
        _by_start(claims, "The server's computation grows quadratically").verdict
        == HOLDS
    )
    assert _by_start(claims, "The server learns nothing").verdict == HOLDS
    assert _by_start(claims, "The server's output is exactly").verdict == HOLDS
    for claim in claims:
        assert claim.source and claim.evidence


def test_claims_that_fail_say_so():
    run = _synthetic(server_power=1.0, plain=(7.0, 7.2, 6.9), masked=(7.5, 7.6, 7.4))
    run.tolerance = [experiment.ToleranceCheck(9, 6, 3, False, True, "")]
    run.trials = [
        experiment.AttackTrial(t.psnr_plain, t.psnr_masked, 8.0, 3, 10, t.images)
        for t in run.trials
    ]
    claims = experiment.claims(run)
    assert _by_start(claims, "The protocol tolerates").verdict == DOES_NOT_HOLD
    assert (
        _by_start(claims, "The server's computation grows quadratically").verdict
        == DOES_NOT_HOLD
    )
    assert _by_start(claims, "The server learns nothing").verdict == DOES_NOT_HOLD
    assert _by_start(claims, "The server's output is exactly").verdict == DOES_NOT_HOLD
    run.trials = run.trials[:1]
    assert (
        _by_start(experiment.claims(run), "The server learns nothing").verdict
        == NOT_ENOUGH_TRIALS
    )
    run.costs = [p for p in run.costs if p.num_clients == 10]
    assert (
        _by_start(experiment.claims(run), "The server's computation grows").verdict
        == NOT_TESTED
    )


def test_rows_quote_the_paper_with_source_and_confidence():
    rows = experiment.rows(_synthetic())
    quoted = [r for r in rows if r.paper is not None]
    if "expansion" in METRICS:
        assert sorted(r.paper for r in quoted) == [1.73, 1.98]
    for row in quoted:
        assert "Bonawitz" in row.paper_source and row.paper_confidence == "P"
    assert all(math.isfinite(r.ours) for r in rows)


def test_bad_parameters_are_caught_before_running():
    with pytest.raises(Exception, match="ring"):
        experiment.check({**SMOKE, "ring_bits": 16, "frac_bits": 14})
    with pytest.raises(Exception, match="dropouts"):
        experiment.check({**SMOKE, "dropouts": "0,0.5"})


def test_a_smoke_run_produces_every_part_of_the_page():
    params = experiment.check(SMOKE)
    result = experiment.run(params, progress=False)
    assert all(
        c.model_bytes == c.measured_min == c.measured_max and c.exact_sum
        for c in result.validation
    )
    (tolerance,) = result.tolerance
    assert (
        tolerance.exact
        and tolerance.one_more_aborts
        and "threshold" in tolerance.abort_message
    )
    assert {(p.protocol, p.dropout) for p in result.costs} >= {
        ("secagg", 0.0),
        ("secagg", 0.3),
    }
    assert not any(p.aborted for p in result.costs if p.protocol == "secagg")
    (trial,) = result.trials
    assert trial.mismatches == 0
    assert experiment.rows(result) and experiment.claims(result)
    assert "expansion" in experiment.summary_text(result).lower()
    experiment.cost_figure(result)
    experiment.attack_figure(result)
    assert len(experiment.cost_table(result)) == len(result.costs)
