import pytest
import torch

from vqgram.tokenizer.backbones import create_backbone, get_spec, list_backbones


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_has_the_same_seam(name):
    spec = get_spec(name)
    model = create_backbone(name, weights=None)
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        fmap = model.forward_features(x)
        pooled = model.forward_head(fmap, pre_logits=True)
        logits = model.forward_head(fmap)
    assert fmap.shape == (2, spec.channels, 64 // spec.stride, 96 // spec.stride)
    assert pooled.shape == (2, spec.channels) and logits.shape == (2, 1000)
    assert not any(p.requires_grad for p in model.parameters())


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ValueError, match="efficientnet_lite0.*resnet50"):
        get_spec("vgg")


# ImageNet class ids of sample photos the weights classify with confidence (tripod, Egyptian cat, espresso)
IMAGENET_CLASS = {"camera": 872, "cat": 285, "coffee": 967}


def test_default_weights_are_real_imagenet_weights(photos):
    """The shipped EfficientNet-Lite0 weights classify sample photos into their ImageNet class."""
    from vqgram.images import load_resized, to_tensor

    spec = get_spec("efficientnet_lite0")
    model = create_backbone("efficientnet_lite0")
    names = sorted(IMAGENET_CLASS)
    originals = [sorted((photos / n).iterdir())[0] for n in names]  # the photo, before its edited copies
    x = [to_tensor(load_resized(p, 224, 32), spec.mean, spec.std) for p in originals]
    with torch.inference_mode():
        predicted = [model(t[None]).argmax(-1).item() for t in x]  # one at a time: the photos differ in shape
    assert predicted == [IMAGENET_CLASS[n] for n in names]
