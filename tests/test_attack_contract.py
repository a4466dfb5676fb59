"""The analytic attacks behind the one contract: R-GAP and CAFE by name."""

import torch

from gi_lib import data, metrics
from gi_lib.attacks import build_attack, cafe
from gi_lib.experiments import cafe as cafe_experiment


def test_cafe_by_name_replays_the_online_attack(mnist):
    # The registry's CAFE takes a recording of the server's view and must give
    # what the online attack gives when fed the same steps.
    images, labels, _ = data.sample_victims(mnist, 8, seed=0)
    training = cafe_experiment.setup(
        images, labels, num_parties=2, batch_size=4, lr=0.0, seed=0, num_classes=10
    )
    steps = tuple(training.step() for _ in range(12))
    online = cafe.CAFE.for_model(training.model, training.num_samples, seed=3)
    for step in steps:
        online.update(step)
    recording = cafe.VerticalRecording(steps=steps, num_samples=8)
    result = build_attack("cafe").reconstruct(recording, seed=3, truth=images)
    assert torch.equal(result.images, online.images())
    seen = torch.unique(torch.cat([s.indices for s in steps]))
    assert torch.equal(result.labels[seen], labels[seen])
    assert len(result.history) == 12 and "psnr" in result.history[-1]
    assert "step1" in result.history[0]


def test_rgap_by_name_is_the_closed_form(mnist):
    from gi_lib import models
    from gi_lib.attacks import rgap

    info = data.dataset_info("mnist")
    images, _, _ = data.sample_victims(mnist, 1, seed=0)
    net = models.build_model("fcn3", info, seed=0)
    observation = rgap.observe(net, images, rgap.wrong_labels(net, images))
    by_name = build_attack("rgap").reconstruct(observation, seed=5)
    direct = rgap.reconstruct(observation)
    assert torch.equal(by_name.images, direct.images)
    assert float(metrics.psnr(by_name.images, images)) > 30.0


# --- the contract, written once in the registry --------------------------------


def test_every_attack_is_called_with_the_one_contract():
    import inspect

    from gi_lib.attacks import attack_entry, attack_names

    for name in attack_names():
        entry = attack_entry(name)
        parameters = inspect.signature(entry.reconstruct).parameters
        assert list(parameters) == ["observation", "config", "seed", "truth"], name
        assert parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY
        assert entry.config_type.__name__ in str(parameters["config"].annotation)
        # The summary is the first line of the attack's docstring.
        assert entry.summary == inspect.getdoc(entry.reconstruct).splitlines()[0]


def test_a_config_of_the_wrong_type_or_a_bad_seed_is_refused(mnist):
    import pytest

    from gi_lib.attacks import dlg, idlg, rgap

    with pytest.raises(TypeError, match="takes a RGAPConfig, got DLGConfig"):
        rgap.reconstruct(None, dlg.DLGConfig())
    with pytest.raises(TypeError, match="seed must be an integer"):
        idlg.reconstruct(None, seed=0.5)
    with pytest.raises(ValueError, match="takes a RGAPConfig"):
        build_attack("rgap", dlg.DLGConfig())


def test_an_attack_pickles_by_reference():
    import pickle

    from gi_lib.attacks import inverting

    assert pickle.loads(pickle.dumps(inverting.reconstruct)) is inverting.reconstruct
