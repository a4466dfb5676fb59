"""The papers' models behind one registry.

Every model takes images in [0, 1]; a model that the paper trained on
normalised inputs carries its normalisation inside (:class:`Normalize`), so an
attack always optimises images on the [0, 1] scale.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gi_lib._registry import Registry
from gi_lib.data import DatasetInfo

ModelFactory = Callable[[DatasetInfo], nn.Module]
_REGISTRY: Registry[ModelFactory] = Registry("model")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator adding a factory ``DatasetInfo -> nn.Module`` to the registry."""
    return _REGISTRY.register(name)


def model_names() -> tuple[str, ...]:
    """Names accepted by :func:`build_model`."""
    return tuple(sorted(_REGISTRY))


def build_model(name: str, info: DatasetInfo, *, seed: int) -> nn.Module:
    """Build model ``name`` for data set ``info`` with seeded initialisation."""
    factory = _REGISTRY.lookup(name)
    # fork_rng keeps the caller's global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(info)


class Normalize(nn.Module):
    """Channel-wise normalisation as the first layer of a model."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class LeNetDLG(nn.Module):
    """The LeNet variant of DLG (Zhu et al. 2019): three 5x5 convolutions with
    sigmoid activations and one linear layer, no pooling.

    Sigmoid is smooth, so the twice-differentiable gradient-matching loss has
    useful second derivatives (ReLU's are zero almost everywhere). DLG feeds
    unnormalised [0, 1] images, so this model has no normalisation layer.
    """

    def __init__(self, channels: int, image_size: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 12, kernel_size=5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(12, 12, kernel_size=5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(12, 12, kernel_size=5, padding=2, stride=1),
            nn.Sigmoid(),
        )
        side = image_size
        for _ in range(2):  # two stride-2 convolutions with padding 2
            side = (side + 2 * 2 - 5) // 2 + 1
        self.fc = nn.Linear(12 * side * side, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DLG's initialisation: every weight and bias uniform in [-0.5, 0.5]."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.uniform_(module.weight, -0.5, 0.5)
                nn.init.uniform_(module.bias, -0.5, 0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.body(images)
        return self.fc(features.flatten(1))


@register_model("lenet")
def _lenet(info: DatasetInfo) -> nn.Module:
    return LeNetDLG(info.channels, info.image_size, info.num_classes)


def _conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class ConvNet(nn.Module):
    """The ConvNet of Inverting Gradients (Geiping et al. 2020).

    Eight 3x3 convolutions (with bias), each followed by BatchNorm and ReLU,
    of widths ``w, 2w, 2w, 4w, 4w, 4w`` then two 3x3 max-pools around two
    more ``4w`` convolutions, and one linear layer. The official code lists
    its sixth block twice in an ordered dict, so the duplicate collapses and
    the network has eight convolutions, as here. The paper's width is 64.
    """

    def __init__(
        self,
        info: DatasetInfo,
        width: int = 64,
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be positive, got {width}.")
        widths = (info.channels, width, 2 * width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = [Normalize(info.mean, info.std)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += _conv_block(c_in, c_out)
        layers += _conv_block(4 * width, 4 * width)  # the sixth block, 4w -> 4w
        layers.append(nn.MaxPool2d(3))
        layers += _conv_block(4 * width, 4 * width)
        layers += _conv_block(4 * width, 4 * width)
        layers.append(nn.MaxPool2d(3))
        self.features = nn.Sequential(*layers)
        side = info.image_size // 3 // 3
        if side < 1:
            raise ValueError(f"ConvNet needs images of at least 9 pixels, got {side}.")
        self.fc = nn.Linear(4 * width * side * side, info.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images).flatten(1))


for _width in (8, 16, 32, 64):
    register_model(f"convnet{_width}")(lambda info, _w=_width: ConvNet(info, width=_w))
register_model("convnet")(lambda info: ConvNet(info, width=64))


class SmallConvNet(nn.Module):
    """A shallow BatchNorm ConvNet for CPU-scale attacks on train-mode BatchNorm.

    Three 3x3 convolutions (with bias) of widths ``w, 2w, 2w``, each followed by
    BatchNorm and ReLU, with a 2x2 max-pool after the second and third, and one
    linear layer. It is the shallow end of :class:`ConvNet`'s design. With
    BatchNorm in train mode, the gradient of the eight-layer ConvNet changes
    so sharply with the input near initialisation that a few thousand attack
    steps on a CPU do not reconstruct; this network keeps the threat model
    (every layer renormalises with the batch's own statistics) at a depth
    where they do.
    """

    def __init__(self, info: DatasetInfo, width: int = 16) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be positive, got {width}.")
        self.features = nn.Sequential(
            Normalize(info.mean, info.std),
            *_conv_block(info.channels, width),
            *_conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            *_conv_block(2 * width, 2 * width),
            nn.MaxPool2d(2),
        )
        side = info.image_size // 2 // 2
        if side < 1:
            raise ValueError(
                f"SmallConvNet needs images of at least 4 pixels, got {side}."
            )
        self.fc = nn.Linear(2 * width * side * side, info.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images).flatten(1))


for _width in (16, 32):
    register_model(f"smallconv{_width}")(
        lambda info, _w=_width: SmallConvNet(info, width=_w)
    )


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/20/32: two 3x3 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A ResNet for 32x32 images, as the Inverting Gradients code builds them.

    A 3x3 stride-1 stem without max-pool, stages of :class:`BasicBlock` with
    strides 1, 2, 2, 2 (as many as ``blocks`` lists) and widths doubling from
    ``base_width``, global average pooling and one linear layer. Convolutions
    get Kaiming-normal weights, BatchNorm weight 1 and bias 0.

    Args:
        info: the data set (channels, classes, normalisation).
        blocks: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        base_width: channels of the stem and first stage (64 for ResNet-18,
            16 x k for the CIFAR ResNets of widening factor k).
    """

    def __init__(
        self, info: DatasetInfo, blocks: tuple[int, ...], base_width: int
    ) -> None:
        super().__init__()
        self.normalize = Normalize(info.mean, info.std)
        self.stem = nn.Sequential(
            nn.Conv2d(info.channels, base_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        in_channels = base_width
        for stage, count in enumerate(blocks):
            out_channels = base_width * 2**stage
            for block in range(count):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(in_channels, out_channels, stride))
                in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, info.num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu"
                )
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(self.normalize(images)))
        return self.fc(self.pool(features).flatten(1))


# name -> (blocks per stage, base width), as in the Inverting Gradients code.
CIFAR_RESNETS: dict[str, tuple[tuple[int, ...], int]] = {
    "resnet18": ((2, 2, 2, 2), 64),
    "resnet20": ((3, 3, 3), 16),
    "resnet20-4": ((3, 3, 3), 64),
    "resnet32-10": ((5, 5, 5), 160),
}
for _name, (_blocks, _base) in CIFAR_RESNETS.items():
    register_model(_name)(lambda info, _b=_blocks, _w=_base: CifarResNet(info, _b, _w))


# ---------------------------------------------------------------------------
# R-GAP's small networks (Zhu and Blaschko, ICLR 2021)
# ---------------------------------------------------------------------------


class RGAPBlock(nn.Module):
    """One R-GAP layer: a bias-free linear map (``layer``) then ``act``."""

    def __init__(self, layer: nn.Conv2d | nn.Linear, act: nn.Module) -> None:
        super().__init__()
        if layer.bias is not None:
            raise ValueError("R-GAP's layers have no bias.")
        self.layer = layer
        self.act = act

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, nn.Linear):
            inputs = inputs.flatten(1)
        return self.act(self.layer(inputs))


# (out_channels, kernel, stride, padding) of each convolution.
ConvSpec = tuple[int, int, int, int]
# CNN6 of the official code; CNN6-d narrows the second convolution to 20.
CNN6_CONVS: tuple[ConvSpec, ...] = (
    (12, 4, 2, 2),
    (36, 3, 2, 1),
    (36, 3, 1, 1),
    (36, 3, 1, 1),
    (64, 3, 2, 1),
    (128, 3, 1, 1),
)
CNN6D_CONVS: tuple[ConvSpec, ...] = ((12, 4, 2, 2), (20, 3, 2, 1), *CNN6_CONVS[2:])


class RGAPNet(nn.Module):
    """The networks R-GAP attacks: bias-free layers with invertible activations.

    Convolutions (``convs``) and then fully-connected layers of widths
    ``hidden``, each followed by LeakyReLU (negative slope ``slope``, 0.2 in
    the paper), and a bias-free linear head with a single logit and no
    activation: the paper trains with the logistic loss on two classes
    (:func:`gi_lib.attacks.rgap.logistic_loss`). PyTorch's default
    initialisation, as in the official code; no normalisation layer (the
    official code feeds [0, 1] images).

    ``body`` is the list of :class:`RGAPBlock`, input to output; R-GAP walks it
    backwards.
    """

    def __init__(
        self,
        info: DatasetInfo,
        convs: tuple[ConvSpec, ...] = (),
        hidden: tuple[int, ...] = (),
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        blocks: list[RGAPBlock] = []
        channels, side = info.channels, info.image_size
        for out_channels, kernel, stride, padding in convs:
            conv = nn.Conv2d(
                channels, out_channels, kernel, stride, padding, bias=False
            )
            blocks.append(RGAPBlock(conv, nn.LeakyReLU(slope)))
            channels, side = out_channels, (side + 2 * padding - kernel) // stride + 1
            if side < 1:
                raise ValueError(f"convolutions {convs} leave no pixels.")
        features = channels * side * side
        for width in hidden:
            blocks.append(
                RGAPBlock(nn.Linear(features, width, bias=False), nn.LeakyReLU(slope))
            )
            features = width
        blocks.append(RGAPBlock(nn.Linear(features, 1, bias=False), nn.Identity()))
        self.body = nn.ModuleList(blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = images
        for block in self.body:
            out = block(out)
        return out


register_model("cnn6")(lambda info: RGAPNet(info, CNN6_CONVS))
register_model("cnn6d")(lambda info: RGAPNet(info, CNN6D_CONVS))
# FCN3: two hidden layers of 1000 and 100 units (the official code also puts a
# LeakyReLU on the single output logit; here the head is linear, as for CNN6).
register_model("fcn3")(lambda info: RGAPNet(info, hidden=(1000, 100)))
