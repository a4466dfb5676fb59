import math

import pytest
import torch

from gi_lib import data, fl, models
from gi_lib._registry import Registry
from gi_lib.attacks import build_attack


def test_images_are_in_unit_range_with_dataset_shape(cifar10, mnist):
    for dataset, name in ((cifar10, "cifar10"), (mnist, "mnist")):
        info = data.dataset_info(name)
        image, label = dataset[0]
        assert image.shape == (info.channels, info.image_size, info.image_size)
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert 0 <= label < info.num_classes


def test_victims_are_reproducible_and_distinct(cifar10):
    a_images, a_labels, a_idx = data.sample_victims(cifar10, 5, seed=3)
    b_images, b_labels, b_idx = data.sample_victims(cifar10, 5, seed=3)
    c_images, _, c_idx = data.sample_victims(cifar10, 5, seed=4)
    assert torch.equal(a_idx, b_idx) and torch.equal(a_images, b_images)
    assert torch.equal(a_labels, b_labels)
    assert not torch.equal(a_idx, c_idx)
    assert len(set(a_idx.tolist())) == 5


def test_more_victims_than_images_is_a_clear_error():
    tiny = data.TensorImages(torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="only 3"):
        data.sample_victims(tiny, 4, seed=0)


def test_missing_dataset_offline_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("GI_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_dataset("cifar100", "test", download=False)
    message = str(error.value)
    assert "GI_DATA_DIR" in message and "download" in message


def test_unknown_dataset_and_model_list_the_choices():
    with pytest.raises(ValueError, match="cifar10"):
        data.dataset_info("imagenet-21k")
    with pytest.raises(ValueError, match="lenet"):
        models.build_model("vgg99", data.dataset_info("mnist"), seed=0)


def test_a_registry_refuses_a_second_entry_and_its_copy_is_separate():
    colours = Registry("colour", {"red": 1})
    colours.register("blue")(2)
    assert list(colours) == ["red", "blue"] and colours.lookup("blue") == 2
    with pytest.raises(ValueError, match="two colours named 'red'"):
        colours.add("red", 3)
    with pytest.raises(ValueError, match="Unknown colour 'green'; choose one of red"):
        colours.lookup("green")
    scratch = colours.copy()
    scratch.add("green", 4)
    assert "green" in scratch and "green" not in colours


def test_lfw_subset_works_offline():
    lfw = data.load_dataset("lfw")
    image, label = lfw[0]
    assert image.shape == (1, 32, 32) and label == 0
    assert lfw[150][1] == 1


def test_lenet_follows_dlg():
    net = models.build_model("lenet", data.dataset_info("cifar10"), seed=0)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert net.fc.in_features == 768
    mnist_net = models.build_model("lenet", data.dataset_info("mnist"), seed=0)
    assert mnist_net.fc.in_features == 588
    weights = torch.cat([p.flatten() for p in net.parameters()])
    assert weights.min() >= -0.5 and weights.max() <= 0.5 and weights.std() > 0.25
    assert any(isinstance(m, torch.nn.Sigmoid) for m in net.modules())
    same = models.build_model("lenet", data.dataset_info("cifar10"), seed=0)
    assert all(
        torch.equal(p, q)
        for p, q in zip(net.parameters(), same.parameters(), strict=True)
    )


def test_observation_holds_the_gradient_and_no_client_data(cifar10):
    images, labels, _ = data.sample_victims(cifar10, 2, seed=0)
    info = data.dataset_info("cifar10")
    net = models.build_model("lenet", info, seed=0)
    observation = fl.observe_fedsgd(net, images, labels, num_classes=10)
    assert observation.labels is None and observation.num_images == 2
    # The observed gradient is the true gradient of the mean cross-entropy.
    net.zero_grad()
    torch.nn.functional.cross_entropy(net(images), labels).backward()
    for observed, param in zip(observation.gradients, net.parameters(), strict=True):
        torch.testing.assert_close(observed, param.grad)
    # The attacker's copy does not alias the client's model.
    assert observation.model is not net
    # Poison the client's data and model once the update is sent: nothing the
    # attacker holds refers to them, so its view stays finite and an attack
    # on it still runs.
    images.fill_(math.nan)
    labels.fill_(-1)
    with torch.no_grad():
        for param in net.parameters():
            param.fill_(math.nan)
    held = [*observation.gradients, *observation.model.state_dict().values()]
    assert all(torch.isfinite(t).all() for t in held)
    result = build_attack("dlg", max_iterations=2).reconstruct(observation, seed=0)
    assert torch.isfinite(result.images).all() and not result.diverged


def test_train_mode_observation_does_not_leak_the_batch_into_bn_statistics(cifar10):
    images, labels, _ = data.sample_victims(cifar10, 2, seed=0)
    net = models.build_model("convnet16", data.dataset_info("cifar10"), seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    observation = fl.observe_fedsgd(
        net, images, labels, num_classes=10, model_mode="train"
    )
    for name, value in observation.model.state_dict().items():
        torch.testing.assert_close(value, before[name], msg=name)
    assert observation.model.training
