import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch

from gi_lib import metrics, profiles
from gi_lib.experiments.common import uses_num_threads
from gi_lib.params import (
    ExperimentParams,
    ParameterError,
    call_with_fields,
    check_parameters,
    check_value,
    datasets_param,
    new_names,
    param,
    parameter_specs,
    resolve_device,
)
from gi_lib.results import ResultRow, write_results


def test_psnr_mse_ssim_values():
    truth = torch.full((2, 3, 8, 8), 0.5)
    noisy = truth.clone()
    noisy[1] += 0.1
    assert metrics.mse(noisy, truth).tolist() == pytest.approx([0.0, 0.01], abs=1e-7)
    assert float(metrics.psnr(noisy, truth)[1]) == pytest.approx(20.0, abs=1e-3)
    ssim = metrics.ssim(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert ssim.shape == (2,) and float(ssim.max()) < 0.5
    same = torch.rand(2, 1, 16, 16)
    assert metrics.ssim(same, same).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_label_accuracy_compares_multisets():
    assert metrics.label_accuracy(torch.tensor([3]), torch.tensor([3])) == 1.0
    assert metrics.label_accuracy(
        torch.tensor([1, 2, 2]), torch.tensor([2, 1, 3])
    ) == pytest.approx(2 / 3)


def test_best_matching_undoes_a_shuffle():
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(6, 3, 8, 8, generator=generator)
    permutation = torch.tensor([4, 0, 5, 2, 1, 3])
    shuffled = truth[permutation] + 0.01 * torch.randn(6, 3, 8, 8, generator=generator)
    order = metrics.best_matching(shuffled, truth)
    assert torch.equal(permutation[order], torch.arange(6))


@dataclass(frozen=True, kw_only=True)
class ToyParams(ExperimentParams):
    dataset: tuple[str, ...] = datasets_param()
    max_iterations: int = param("steps", minimum=1)
    lr: float = param("step size", above=0)
    ratios: tuple[float, ...] = param("pruning ratios", minimum=0, maximum=1)
    sizes: tuple[int, ...] = param("batch sizes", minimum=1, maximum=8)


GOOD = dict(
    profile="cpu",
    dataset="mnist,cifar10",
    model="lenet",
    num_trials=2,
    seed=0,
    device="auto",
    num_threads=1,
    max_iterations=10,
    lr=1,
    ratios="0, 0.5,1",
    sizes="1,4",
)


def _check(**change):
    return check_parameters({**GOOD, **change}, ToyParams, notebook="toy")


def test_good_parameters_give_a_typed_frozen_object():
    params = _check()
    assert params == ToyParams(
        profile="cpu",
        dataset=("mnist", "cifar10"),
        model="lenet",
        num_trials=2,
        seed=0,
        device="auto",
        num_threads=1,
        max_iterations=10,
        lr=1.0,
        ratios=(0.0, 0.5, 1.0),
        sizes=(1, 4),
    )
    assert type(params.lr) is float  # an int is promoted where a float is declared
    assert all(type(r) is float for r in params.ratios)
    assert all(type(s) is int for s in params.sizes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 1  # type: ignore[misc]


def test_lists_may_also_be_given_as_lists():
    params = _check(ratios=[0.5, 1], sizes=(2,), dataset=["lfw"])
    assert (params.ratios, params.sizes, params.dataset) == ((0.5, 1.0), (2,), ("lfw",))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"max_iteration": 3},
            "(?s)no parameter named 'max_iteration'.*max_iterations",
        ),
        ({"max_iterations": "10"}, "'max_iterations' must be of type int"),
        ({"max_iterations": -5}, "too small"),
        ({"num_trials": True}, "must be of type int"),
        ({"lr": 0.0}, "'lr' = 0.0 is too small; it must be > 0"),
        ({"lr": float("nan")}, "finite"),
        ({"num_threads": 0}, "num_threads"),
        ({"device": "tpu"}, "cuda"),
        ({"model": "resnet1000"}, "lenet"),
        # list kinds
        ({"ratios": "0.5,2"}, "'ratios' item 2 = 2.0 is too large; each item"),
        ({"sizes": "0,1"}, "'sizes' item 1 = 0 is too small"),
        ({"ratios": ""}, "'ratios' = '' names nothing"),
        ({"ratios": ()}, "names nothing"),
        ({"ratios": "0.5,,0.9"}, "empty item"),
        ({"dataset": "mnist,svhn"}, "unknown value 'svhn'.*cifar10"),
        ({"dataset": "mnist,mnist"}, "repeats a value"),
        ({"ratios": "0.5,half"}, "'ratios' item 2 = 'half' is not a float"),
        ({"sizes": "1,2.5"}, "'sizes' item 2 = '2.5' is not an int"),
        ({"sizes": [1, True]}, "'sizes' item 2 must be of type int"),
        ({"ratios": 0.5}, "'ratios' must be a comma-separated string"),
    ],
)
def test_bad_parameters_say_what_to_change(change, match):
    with pytest.raises(ParameterError, match=match):
        _check(**change)


def test_a_missing_parameter_is_named():
    values = dict(GOOD)
    del values["num_threads"]
    with pytest.raises(ParameterError, match="missing parameters: num_threads"):
        check_parameters(values, ToyParams, notebook="toy")


def test_a_field_without_its_spec_or_with_another_type_is_refused():
    @dataclass(frozen=True, kw_only=True)
    class Untyped(ExperimentParams):
        weights: dict = param("not a notebook parameter")

    with pytest.raises(TypeError, match="Untyped.weights"):
        parameter_specs(Untyped)

    @dataclass(frozen=True, kw_only=True)
    class Bare(ExperimentParams):
        steps: int = 3

    with pytest.raises(TypeError, match="Bare.steps must be declared with"):
        parameter_specs(Bare)


def test_profile_choices_follow_the_profile_files(tmp_path, monkeypatch):
    for name in ("fast", "slow"):
        (tmp_path / f"{name}.yaml").write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(profiles, "PROFILES_DIR", tmp_path)
    assert profiles.profile_names() == ("fast", "slow")
    assert _check(profile="fast").profile == "fast"
    with pytest.raises(ParameterError, match="'cpu'; choose one of: fast, slow"):
        _check(profile="cpu")


def test_every_experiment_refuses_bad_values_with_parameter_error():
    from gi_lib.experiments import cafe, dpsgd, pruning

    common = dict(
        profile="smoke", seed=0, device="cpu", num_threads=1, dataset="cifar10"
    )
    prune = {**common, "model": "lenet", "num_trials": 1, "attacks": "dlg",
             "max_iterations": 1, "inverting_iterations": 1,
             "success_psnr": 30.0, "num_shown": 1}  # fmt: skip
    with pytest.raises(ParameterError, match="ratios"):
        pruning.check({**prune, "ratios": "0.5,2"})
    with pytest.raises(
        ParameterError, match="'bn_prior'; choose from: dlg, idlg, inverting"
    ):
        pruning.check({**prune, "ratios": "0.5", "attacks": "dlg,bn_prior"})
    with pytest.raises(ParameterError, match="repeats a value"):
        pruning.check({**prune, "ratios": "0.5", "attacks": "dlg,dlg"})
    page = dict(
        common,
        dataset="mnist",
        model="pca_mlp",
        num_trials=1,
        attack="dlg",
        attack_model="lenet",
        max_iterations=1,
        num_shown=1,
        target_epsilons="2",
        pca_noise="7",
        train_images=200,
        test_images=200,
        train_epochs=1,
        lot_size=20,
        clip_norm=4.0,
        lr=0.1,
        end_lr=0.052,
        lr_saturate_epochs=10,
        pca_dims=10,
        hidden_units=8,
        delta=1e-5,
    )
    with pytest.raises(ParameterError, match="noise_multipliers"):
        dpsgd.check({**page, "noise_multipliers": "1.0,0"})
    assert dpsgd.check({**page, "noise_multipliers": "2,4"}).noise_multipliers == (
        2.0,
        4.0,
    )
    vertical = dict(
        common,
        model="vertical_cnn",
        num_trials=4,
        batch_size=2,
        num_parties=2,
        batch_sizes="2,8",
        party_counts="2",
        iterations=1,
        train_lr=0.1,
        dlg_iterations=1,
        num_shown=1,
    )
    with pytest.raises(ParameterError, match="batch size 8 exceeds the 4 samples"):
        cafe.check(vertical)


@pytest.mark.parametrize("module", ["rgap", "cafe"])
def test_cpu_only_experiments_refuse_cuda_instead_of_overriding_it(module):
    import importlib

    experiment = importlib.import_module(f"gi_lib.experiments.{module}")
    spec = parameter_specs(
        experiment.RGAPParams if module == "rgap" else experiment.CAFEParams
    )["device"]
    with pytest.raises(
        ParameterError, match="unknown value 'cuda'; choose one of: auto, cpu"
    ):
        check_value(spec, "cuda")
    with pytest.raises(ParameterError, match="use auto or cpu"):
        resolve_device("cuda", supported=experiment.DEVICES)
    assert resolve_device("auto", supported=experiment.DEVICES).type == "cpu"


@uses_num_threads
def _toy_run(params: ToyParams) -> int:
    return torch.get_num_threads()


def test_num_threads_is_used_and_recorded(tmp_path):
    before = torch.get_num_threads()
    wanted = before + 2
    params = _check(num_threads=wanted)
    assert _toy_run(params) == wanted
    assert torch.get_num_threads() == before  # restored
    path = write_results(
        "toy",
        profile=params.profile,
        parameters=params,
        rows=[ResultRow.against("toy/exp", "psnr", 30.0, None)],
        wall_seconds=0.1,
        directory=tmp_path,
    )
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["environment"]["threads"] == wanted != torch.get_num_threads()
    assert record["parameters"]["num_threads"] == wanted
    assert record["parameters"]["ratios"] == [0.0, 0.5, 1.0]
    assert record["parameters"]["dataset"] == ["mnist", "cifar10"]


def test_new_names_sees_injected_parameters():
    namespace = {"In": [], "torch": torch}
    baseline = set(namespace)
    namespace.update(seed=1, typo_name=2, _private=3)
    assert new_names(namespace, baseline) == {"seed": 1, "typo_name": 2}


def test_call_with_fields_takes_the_same_names_unless_given():
    @dataclass(frozen=True)
    class Settings:
        seed: int
        epochs: int
        lr: float = 0.1
        momentum: float = 0.9

    params = _check(seed=7, lr=0.5)
    # seed and lr are the params' own (params has no epochs or momentum).
    settings = call_with_fields(Settings, params, epochs=3)
    assert settings == Settings(seed=7, epochs=3, lr=0.5, momentum=0.9)
    # A given value wins over a field of the same name.
    given = call_with_fields(Settings, params, epochs=3, seed=11)
    assert (given.seed, given.lr) == (11, 0.5)
    with pytest.raises(TypeError, match="epochs"):
        call_with_fields(Settings, params)


def test_num_threads_limits_numpy_blas_too():
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    @uses_num_threads
    def run(params: ToyParams) -> set[int]:
        return blas_threads()

    before = blas_threads()
    if not before:
        pytest.skip("numpy has no BLAS that threadpoolctl can control here")
    assert run(_check(num_threads=1)) == {1}
    assert blas_threads() == before  # restored
