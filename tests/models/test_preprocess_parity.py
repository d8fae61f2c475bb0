"""ROZ's input tensor equals the model library's eval transform output before ``Normalize``.

The references are built here from the libraries' own public APIs (open_clip
``create_model_and_transforms`` / ``image_transform_v2``, timm ``resolve_data_config`` +
``create_transform``, torchvision ``weights.transforms()``, transformers image processors), fed
the testbed's decode ``Image.open(path).convert('RGB')``; ROZ's side goes through a real dataset
(``decode='testbed'``) and ``model.transform()``. Pixels must be bit-identical: both run the same
PIL resampling, so there is no rounding to excuse.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import Compose, Normalize

from roz.datasets.images import load_image
from roz.datasets.registry import create_dataset
from roz.errors import ModelError
from roz.models.adapters import create_model
from roz.models.transforms import openclip_config, resolve_openclip, resolve_torchvision

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 48, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _smooth(w, h, seed, channels=3):
    """A natural-ish image: smooth gradients plus texture (resampling differences show up)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for c in range(channels):
        f = rng.uniform(0.01, 0.08, 2)
        base = 127 + 90 * np.sin(xx * f[0] + c) * np.cos(yy * f[1] - c)
        out.append(base + rng.normal(0, 20, (h, w)))
    return np.clip(np.stack(out, -1), 0, 255).astype(np.uint8)


def _write_images(folder):
    folder.mkdir(parents=True)
    Image.fromarray(_smooth(500, 375, 0)).save(folder / "a_rgb_500x375.jpg", quality=90)
    Image.fromarray(_smooth(375, 500, 1)).save(folder / "b_rgb_375x500.png")
    Image.fromarray(_smooth(640, 480, 2, 1)[..., 0], "L").save(folder / "c_grey_640x480.png")
    rgba = np.concatenate([_smooth(300, 300, 3), _smooth(300, 300, 4, 1)], -1)
    Image.fromarray(rgba, "RGBA").save(folder / "d_rgba_300x300.png")
    Image.fromarray(_smooth(320, 240, 5)).quantize(64).save(folder / "e_palette_320x240.png")
    Image.fromarray(_smooth(3, 2, 6)).save(folder / "f_tiny_3x2.png")
    Image.fromarray(_smooth(1000, 120, 7)).save(folder / "g_wide_1000x120.jpg", quality=90)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    _write_images(root / WNIDS[0])
    modes = {p.name: Image.open(p).mode for p in sorted((root / WNIDS[0]).iterdir())}
    assert sorted(set(modes.values())) == ["L", "P", "RGB", "RGBA"]
    return root


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip config (48 px) and random weights saved without a sidecar."""
    import open_clip

    d = tmp_path_factory.mktemp("tinyclip")
    (d / "configs").mkdir()
    cfg = d / "configs" / "tiny-parity-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-parity-clip", pretrained=None)
    weights = d / "weights.pt"
    torch.save(model.state_dict(), weights)
    return cfg, weights


def _split(lib_transform):
    """(the library's transform minus Normalize, the full one) — stripped here, independently of ROZ."""
    steps = list(lib_transform.transforms)
    assert isinstance(steps[-1], Normalize)
    return Compose(steps[:-1]), lib_transform


def _assert_pixels_equal(model_or_pre, lib_transform, images):
    """Every image: ROZ dataset item (testbed decode) == library transform minus Normalize, bit for bit;
    and ROZ's normalisation (recorded mean/std) == the library's Normalize."""
    pixels_t, full_t = _split(lib_transform) if hasattr(lib_transform, "transforms") else lib_transform
    ds = create_dataset("imagefolder", images, decode="testbed")
    ds.transform = model_or_pre.transform()
    pre = model_or_pre.preprocess_cfg if hasattr(model_or_pre, "preprocess_cfg") else model_or_pre
    mean, std = torch.tensor(pre.mean).view(3, 1, 1), torch.tensor(pre.std).view(3, 1, 1)
    for i in range(len(ds)):
        with Image.open(ds.path(i)) as im:
            ref_img = im.convert("RGB")
        x, _, _, ok = ds[i]
        ref = pixels_t(ref_img)
        assert ok and x.dtype == torch.float32 and x.shape == (3, pre.input_size, pre.input_size)
        assert torch.equal(x, ref), f"{ds.path(i).name}: max |diff| {(x - ref).abs().max().item() * 255:.2f}/255"
        assert torch.allclose((x - mean) / std, full_t(ref_img), atol=1e-6), ds.path(i).name


# ------------------------------------------------------------------------------------ open_clip
def test_openclip_adapter_matches_create_model_and_transforms(tiny_clip, images):
    import open_clip

    cfg, weights = tiny_clip
    model = create_model(f"openclip:{cfg}@{weights}", classes=WNIDS, templates=["a photo of a {}."])
    lib_model, _, preprocess_val = open_clip.create_model_and_transforms("tiny-parity-clip", pretrained=str(weights))
    _assert_pixels_equal(model, preprocess_val, images)
    rec = model.describe()["preprocess"]
    assert (rec["pipeline"], rec["resize_mode"], rec["input_size"]) == ("open_clip", "shortest", 48)
    assert (rec["mean"], rec["std"]) == (list(lib_model.visual.preprocess_cfg["mean"]),
                                         list(lib_model.visual.preprocess_cfg["std"]))


def test_openclip_squash_tag_is_honoured(tiny_clip, images, monkeypatch):
    """A pretrained tag carrying SigLIP's preprocessing (resize_mode='squash', mean/std 0.5) on the
    tiny config: open_clip's factory merges it; ROZ's adapter must end with the same transform."""
    import open_clip
    import open_clip.factory
    import open_clip.pretrained

    _, weights = tiny_clip
    tag_cfg = dict(open_clip.get_pretrained_cfg("ViT-B-16-SigLIP", "webli"), hf_hub="roz-test/tiny-squash/", url="")
    assert tag_cfg["resize_mode"] == "squash"
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "tiny-parity-clip", {"squashtag": tag_cfg})
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda *a, **k: str(weights))
    monkeypatch.setattr("roz.models.adapters.hf_cached", lambda *a, **k: True)
    lib_model, _, preprocess_val = open_clip.create_model_and_transforms("tiny-parity-clip", pretrained="squashtag")
    assert lib_model.visual.preprocess_cfg["resize_mode"] == "squash"
    model = create_model("openclip:tiny-parity-clip@squashtag", classes=WNIDS, templates=["a photo of a {}."])
    _assert_pixels_equal(model, preprocess_val, images)
    rec = model.describe()["preprocess"]
    assert (rec["resize_mode"], rec["mean"], rec["std"]) == ("squash", [0.5] * 3, [0.5] * 3)
    # the transform-only resolution agrees with the factory's merge
    resolved = resolve_openclip(openclip_config("tiny-parity-clip", "squashtag"))
    assert resolved == resolve_openclip(lib_model.visual.preprocess_cfg)


@pytest.mark.parametrize("arch,tag", [("ViT-B-32", None), ("RN50", "openai"), ("ViT-B-16-SigLIP", "webli"),
                                      ("ViT-L-14-CLIPA", "datacomp1b")])
def test_openclip_shipped_configs(arch, tag, images):
    """open_clip's shipped configs (transform only: no model is built, nothing downloaded)."""
    import open_clip
    from open_clip.transform import (
        PreprocessCfg,
        image_transform_v2,
        merge_preprocess_dict,
    )

    size = open_clip.get_model_config(arch)["vision_cfg"]["image_size"]
    lib_cfg = merge_preprocess_dict(PreprocessCfg(size=size), open_clip.get_pretrained_cfg(arch, tag) if tag else {})
    lib_t = image_transform_v2(PreprocessCfg(**lib_cfg), is_train=False)
    pre = resolve_openclip(openclip_config(arch, tag))
    assert pre.resize_mode == ("squash" if arch in ("ViT-B-16-SigLIP", "ViT-L-14-CLIPA") else "shortest")
    _assert_pixels_equal(pre, lib_t, images)


def test_openclip_model_normalises_like_open_clip(tiny_clip, images):
    """model(pixels) == open_clip's model on open_clip's normalised tensor (same weights, same head)."""
    import open_clip

    cfg, weights = tiny_clip
    model = create_model(f"openclip:{cfg}@{weights}", classes=WNIDS, templates=["a photo of a {}."])
    lib_model, _, preprocess_val = open_clip.create_model_and_transforms("tiny-parity-clip", pretrained=str(weights))
    ds = create_dataset("imagefolder", images, decode="testbed")
    ds.transform = model.transform()
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    ref_in = torch.stack([preprocess_val(Image.open(ds.path(i)).convert("RGB")) for i in range(len(ds))])
    with torch.no_grad():
        f = lib_model.eval().encode_image(ref_in)
        ref = model.scale * (f / f.norm(dim=-1, keepdim=True)) @ model.head.t()
        assert torch.allclose(model(x), ref, atol=1e-5)


# ----------------------------------------------------------------------------------------- timm
@pytest.mark.parametrize("name,resize,interp", [("resnet18.tv_in1k", 256, "bilinear"),
                                                ("deit_tiny_patch16_224", 248, "bicubic"),
                                                ("vit_tiny_patch16_224", 248, "bicubic")])
def test_timm_adapter_matches_timm_transform(name, resize, interp, images):
    """timm floors size / crop_pct (DeiT/ViT: crop_pct 0.9 -> 248, not round()'s 249)."""
    import timm.data

    model = create_model(f"timm:{name}@none")
    dc = timm.data.resolve_data_config({}, model=model.net)
    _assert_pixels_equal(model, timm.data.create_transform(**dc), images)
    rec = model.describe()["preprocess"]
    assert (rec["resize_size"], rec["interpolation"], rec["crop_pct"]) == (resize, interp, dc["crop_pct"])
    assert (tuple(rec["mean"]), tuple(rec["std"])) == (tuple(dc["mean"]), tuple(dc["std"]))


def test_timm_model_normalises_like_timm(images):
    import timm.data

    model = create_model("timm:deit_tiny_patch16_224@none")
    lib_t = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model.net))
    ds = create_dataset("imagefolder", images, decode="testbed")
    ds.transform = model.transform()
    x = torch.stack([ds[i][0] for i in (0, 3, 6)])
    ref_in = torch.stack([lib_t(Image.open(ds.path(i)).convert("RGB")) for i in (0, 3, 6)])
    with torch.no_grad():
        assert torch.allclose(model(x), model.net(ref_in), atol=1e-5)


# ---------------------------------------------------------------------------------- torchvision
def test_torchvision_matches_weights_transforms(images):
    import torchvision

    model = create_model("torchvision:resnet18@none")  # no weights: the V1 weights' eval transform
    v1 = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    ds = create_dataset("imagefolder", images, decode="testbed")
    for pre, lib_t in ((model.preprocess_cfg, v1),
                       (resolve_torchvision(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.transforms(), "v2"),
                        torchvision.models.ResNet50_Weights.IMAGENET1K_V2.transforms())):
        ds.transform = pre.transform()
        mean, std = torch.tensor(pre.mean).view(3, 1, 1), torch.tensor(pre.std).view(3, 1, 1)
        for i in range(len(ds)):
            ref = lib_t(Image.open(ds.path(i)).convert("RGB"))
            assert torch.allclose((ds[i][0] - mean) / std, ref, atol=1e-6), ds.path(i).name
    assert model.describe()["preprocess"]["resize_size"] == 256
    assert pre.resize_size == 232  # V2 weights resize to 232


# ---------------------------------------------------------------------------------- transformers
def test_transformers_image_processor_parity(tmp_path, images):
    """A ViT processor squashes to height x width (no crop); ROZ runs the processor itself."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    d = tmp_path / "hf-vit"
    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32,
                    patch_size=8, num_labels=1000)
    ViTForImageClassification(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    processor = ViTImageProcessor.from_pretrained(d)
    model = create_model(f"hf:{d}")
    rec = model.describe()["preprocess"]
    assert (rec["pipeline"], rec["resize_mode"], rec["input_size"]) == ("transformers", "squash", 32)
    ds = create_dataset("imagefolder", images, decode="testbed")
    ds.transform = model.transform()
    for i in range(len(ds)):
        ref = processor(images=Image.open(ds.path(i)).convert("RGB"), return_tensors="pt")["pixel_values"]
        x = ds[i][0][None]
        assert torch.allclose(model.normalize(x), ref, atol=1e-6), ds.path(i).name
        with torch.no_grad():
            assert torch.allclose(model(x), model.net.model(pixel_values=ref).logits, atol=1e-5)
    # an unreadable processor config is an error, not a silent fallback to other preprocessing
    (d / "preprocessor_config.json").write_text('{"image_processor_type": "NoSuchImageProcessor"}')
    with pytest.raises(ModelError, match="cannot load the image processor"):
        create_model(f"hf:{d}")


# ------------------------------------------------------------------------------ ROZ checkpoints
def test_sidecar_models_keep_roz_transform(tmp_path, images):
    """ROZ checkpoints whose sidecar states the preprocessing (ROZ-Mini's ``local:`` models) keep
    ROZ's own tensor transform, unchanged: shorter side to resize_size, center crop, on tensors."""
    import timm
    from torchvision.transforms import v2

    from roz.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = timm.create_model("test_vit", num_classes=len(WNIDS), img_size=32)
    path = save_checkpoint(net.state_dict(), tmp_path / "tiny.pt",
                           {"source": "timm", "arch": "test_vit", "kwargs": {"img_size": 32}, "classes": WNIDS,
                            "preprocess": {"input_size": 32, "resize_size": 36, "interpolation": "bicubic",
                                           "mean": [0.5] * 3, "std": [0.5] * 3}})
    model = create_model(f"local:{path}")
    assert model.describe()["preprocess"]["pipeline"] == "roz"
    old = v2.Compose([v2.ToImage(), v2.Resize(36, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                      v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True)])
    ds = create_dataset("imagefolder", images)
    ds.transform = model.transform()
    for i in range(len(ds)):
        assert torch.equal(ds[i][0], old(load_image(ds.path(i))))
