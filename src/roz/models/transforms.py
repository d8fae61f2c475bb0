"""Pixel transforms: a decoded RGB PIL image -> float32 ``[3, S, S]`` in [0, 1].

Each model library ships an eval transform that ends in ``Normalize``. ROZ runs that very
transform with its ``Normalize`` removed (the model normalises inside, with the same mean/std),
so ROZ's input tensor equals the library's transform output before ``Normalize``, bit for bit:
same resize arithmetic (timm floors ``size / crop_pct``), same resize mode (open_clip's
``squash`` for SigLIP / CLIPA tags), same PIL resampling and rounding.

``resolve_*`` turn a library's own preprocessing config into a recorded ``Preprocess``;
``build_transform`` turns a ``Preprocess`` back into the transform (so the record is what runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from roz.errors import ModelError

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


PIPELINES = ("roz", "open_clip", "timm", "torchvision", "transformers")
RESIZE_MODES = ("shortest", "squash", "longest")


@dataclass(frozen=True)
class Preprocess:
    """How a PIL image becomes the model's pixel tensor, recorded with every result.

    ``pipeline`` names whose eval transform is run (minus its ``Normalize``, which happens inside
    the model with ``mean``/``std``): ``open_clip``, ``timm``, ``torchvision``, ``transformers``
    (the model library's own, so ROZ's input equals the library's), or ``roz`` (ROZ's tensor
    transform, used by ROZ checkpoints whose sidecar states the preprocessing, and by
    ``wrap_module``). ``resize_mode``: ``shortest`` resizes the shorter side to ``resize_size``
    then center-crops ``input_size``; ``squash`` resizes both sides to ``input_size`` (no crop);
    ``longest`` resizes the longer side to ``input_size`` and pads. ``options``: the
    library-specific settings passed to that transform, as sorted ``(key, value)`` pairs.
    """

    input_size: int = 224
    resize_size: int = 256
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize_mode: str = "shortest"
    pipeline: str = "roz"
    options: tuple = ()

    @property
    def crop_pct(self) -> float:
        return float(dict(self.options).get("crop_pct", self.input_size / self.resize_size))

    def option(self, key: str, default=None):
        return dict(self.options).get(key, default)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["crop_pct"] = round(self.crop_pct, 6)
        d["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options}
        return d

    def transform(self) -> PixelTransform:
        return build_transform(self)


class PixelTransform:
    """PIL image -> float32 tensor ``output_size`` in [0, 1] (no normalisation)."""

    def __init__(self, steps: Callable, input_size: int, pipeline: str):
        self.steps = steps
        self.pipeline = pipeline
        self.output_size = (3, input_size, input_size)

    def __call__(self, img) -> torch.Tensor:
        return self.steps(img)

    def __repr__(self) -> str:
        return f"PixelTransform[{self.pipeline}]({self.steps!r})"


def without_normalize(compose, what: str):
    """``compose`` (a torchvision ``Compose``) minus its one ``Normalize`` step."""
    from torchvision.transforms import Compose, Normalize
    from torchvision.transforms.v2 import Normalize as NormalizeV2

    steps = list(compose.transforms)
    kept = [t for t in steps if not isinstance(t, (Normalize, NormalizeV2))]
    if len(steps) - len(kept) != 1 or not isinstance(steps[-1], (Normalize, NormalizeV2)):
        raise ModelError(f"{what}: expected an eval transform ending in one Normalize, got {compose}",
                         hint="this library version builds its transform differently; report it to ROZ")
    return Compose(kept)


def build_transform(p: Preprocess) -> PixelTransform:
    if p.pipeline not in _BUILDERS:
        raise ModelError(f"unknown preprocessing pipeline {p.pipeline!r}", hint=f"use one of {', '.join(PIPELINES)}")
    if p.resize_mode not in RESIZE_MODES:
        raise ModelError(f"unknown resize_mode {p.resize_mode!r}", hint=f"use one of {', '.join(RESIZE_MODES)}")
    if p.pipeline != "transformers" and p.interpolation not in INTERPOLATIONS:
        raise ModelError(f"unknown interpolation {p.interpolation!r}", hint=f"use one of {', '.join(INTERPOLATIONS)}")
    return PixelTransform(_BUILDERS[p.pipeline](p), p.input_size, p.pipeline)


# ------------------------------------------------------------------------------------ builders
def _roz(p: Preprocess):
    """ROZ's own tensor transform (ROZ checkpoints whose sidecar states the preprocessing)."""
    from torchvision.transforms import v2

    if p.resize_mode == "longest":
        raise ModelError("the roz pipeline supports resize_mode shortest or squash, not longest")
    interp = v2.InterpolationMode(p.interpolation)
    size = p.resize_size if p.resize_mode == "shortest" else (p.input_size, p.input_size)
    return v2.Compose([v2.ToImage(), v2.Resize(size, interpolation=interp, antialias=True), v2.CenterCrop(p.input_size),
                      v2.ToDtype(torch.float32, scale=True)])


def _open_clip(p: Preprocess):
    import open_clip

    t = open_clip.image_transform(p.input_size, is_train=False, mean=p.mean, std=p.std, resize_mode=p.resize_mode,
                                  interpolation=p.interpolation, fill_color=int(p.option("fill_color", 0)))
    return without_normalize(t, "open_clip")


def _timm(p: Preprocess):
    from timm.data import create_transform

    t = create_transform(input_size=(3, p.input_size, p.input_size), is_training=False, interpolation=p.interpolation,
                         mean=p.mean, std=p.std, crop_pct=p.crop_pct, crop_mode=p.option("crop_mode", "center"))
    return without_normalize(t, "timm")


def _torchvision(p: Preprocess):
    # Every torchvision ``weights.transforms()`` is this preset class (no public constructor):
    # built here with mean 0 / std 1 its Normalize is the identity, the rest is unchanged.
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms._presets import ImageClassification

    return ImageClassification(crop_size=p.input_size, resize_size=p.resize_size, mean=(0.0, 0.0, 0.0),
                               std=(1.0, 1.0, 1.0), interpolation=InterpolationMode(p.interpolation),
                               antialias=p.option("antialias", True))


class _HFProcessorCall:
    """A transformers image processor with ``do_normalize=False`` (it rescales to [0, 1])."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, img) -> torch.Tensor:
        out = self.processor(images=img, do_normalize=False, return_tensors="pt")["pixel_values"][0]
        return out.to(torch.float32)

    def __repr__(self) -> str:
        return f"{type(self.processor).__name__}(do_normalize=False)"


def _transformers(p: Preprocess):
    from transformers import AutoImageProcessor

    src = p.option("source")
    try:
        return _HFProcessorCall(AutoImageProcessor.from_pretrained(src, local_files_only=True))
    except Exception as e:  # noqa: BLE001  (any loader failure is one readable line)
        raise ModelError(f"cannot load the image processor of {src}: {type(e).__name__}: {str(e).splitlines()[0]}",
                         hint="save preprocessor_config.json beside the model") from None


_BUILDERS = {"roz": _roz, "open_clip": _open_clip, "timm": _timm, "torchvision": _torchvision,
             "transformers": _transformers}


# ----------------------------------------------------------------------- library configs -> record
def _square(size, what: str) -> int:
    if isinstance(size, (tuple, list)):
        size = [int(s) for s in size][-2:]
        if size[0] != size[1]:
            raise ModelError(f"{what}: non-square input size {tuple(size)} is not supported",
                             hint="ROZ's shifts and attacks assume square inputs; use a square-input variant")
        size = size[0]
    return int(size)


def resolve_openclip(cfg: dict) -> Preprocess:
    """open_clip's final ``PreprocessCfg`` (``model.visual.preprocess_cfg``) -> Preprocess."""
    from open_clip.transform import PreprocessCfg

    c = PreprocessCfg(**{k: v for k, v in cfg.items() if k in PreprocessCfg.__dataclass_fields__})
    size = _square(c.size, "open_clip")
    mean = tuple(c.mean) if isinstance(c.mean, (tuple, list)) else (float(c.mean),) * 3
    std = tuple(c.std) if isinstance(c.std, (tuple, list)) else (float(c.std),) * 3
    # open_clip maps any interpolation other than 'bilinear' (incl. 'random') to bicubic at eval
    interp = "bilinear" if c.interpolation == "bilinear" else "bicubic"
    return Preprocess(size, size, interp, tuple(float(v) for v in mean), tuple(float(v) for v in std),
                      resize_mode=c.resize_mode, pipeline="open_clip", options=(("fill_color", int(c.fill_color)),))


def openclip_config(arch: str, tag: str | None = None, image_size=None) -> dict:
    """The preprocessing config open_clip's ``create_model(arch, pretrained=tag)`` ends with,
    without building the model or downloading weights (defaults, then the tag's fields, then the
    tower's image size; the order of open_clip's factory)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    model_cfg = open_clip.get_model_config(arch)
    if model_cfg is None:
        raise ModelError(f"unknown open_clip architecture {arch!r}", hint="see open_clip.list_models()")
    cfg = merge_preprocess_dict(PreprocessCfg(), {})
    if tag:
        cfg = merge_preprocess_dict(cfg, open_clip.get_pretrained_cfg(arch, tag) or {})
    cfg["size"] = image_size or model_cfg["vision_cfg"]["image_size"]
    return cfg


def resolve_timm(data_config: dict) -> Preprocess:
    """``timm.data.resolve_data_config(...)`` -> Preprocess; ``resize_size`` is read off the
    transform timm builds (``floor(size / crop_pct)``), not recomputed."""
    from timm.data import create_transform

    size = _square(data_config["input_size"], "timm")
    crop_pct = float(data_config.get("crop_pct") or 0.875)
    crop_mode = data_config.get("crop_mode") or "center"
    t = create_transform(input_size=(3, size, size), is_training=False, interpolation=data_config["interpolation"],
                         mean=data_config["mean"], std=data_config["std"], crop_pct=crop_pct, crop_mode=crop_mode)
    first = t.transforms[0]
    resize = _square(getattr(first, "size", size), "timm")
    mode = {"center": "shortest", "squash": "squash", "border": "longest"}.get(crop_mode, crop_mode)
    return Preprocess(size, resize, data_config["interpolation"], tuple(data_config["mean"]), tuple(data_config["std"]),
                      resize_mode=mode, pipeline="timm", options=(("crop_mode", crop_mode), ("crop_pct", crop_pct)))


def timm_config(name: str) -> dict:
    """timm's eval data config for model ``name`` (``arch.tag`` or arch), without building it."""
    import timm
    from timm.data import resolve_data_config

    pcfg = timm.models.get_pretrained_cfg(name)
    if pcfg is None:
        raise ModelError(f"timm has no pretrained config for {name!r}", hint="see timm.list_pretrained()")
    return resolve_data_config(pretrained_cfg=pcfg.to_dict())


def resolve_torchvision(preset, weights_name: str | None) -> Preprocess:
    """A torchvision ``weights.transforms()`` object -> Preprocess (its own attributes)."""
    return Preprocess(int(preset.crop_size[0]), int(preset.resize_size[0]), preset.interpolation.value,
                      tuple(float(v) for v in preset.mean), tuple(float(v) for v in preset.std),
                      pipeline="torchvision",
                      options=(("antialias", preset.antialias), ("weights_transforms", weights_name)))


def resolve_transformers(processor, source: str) -> Preprocess:
    """A transformers image processor -> Preprocess (its settings; the processor itself runs)."""
    d = processor.to_dict()
    size, crop = d.get("size") or {}, d.get("crop_size")
    squash = isinstance(size, dict) and "height" in size and "shortest_edge" not in size
    if not d.get("do_center_crop", crop is not None) or crop is None:
        crop = size
    crop_px = _square((crop["height"], crop["width"]) if isinstance(crop, dict) and "height" in crop
                      else crop.get("shortest_edge", 224) if isinstance(crop, dict) else crop, "transformers")
    resize_px = _square((size["height"], size["width"]) if squash else
                        size.get("shortest_edge", crop_px) if isinstance(size, dict) else size, "transformers")
    interp = {3: "bicubic", 2: "bilinear", 0: "nearest"}.get(d.get("resample", 3), str(d.get("resample")))
    if not d.get("do_rescale", True) or abs(float(d.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        raise ModelError(f"the image processor of {source} does not rescale pixels by 1/255",
                         hint="ROZ models take pixels in [0, 1]; wrap the model with roz.models.base.wrap_module")
    if d.get("do_normalize", True):
        mean, std = d.get("image_mean") or (0.5, 0.5, 0.5), d.get("image_std") or (0.5, 0.5, 0.5)
    else:  # the model takes [0, 1] pixels as they are
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return Preprocess(crop_px, resize_px, interp, tuple(float(v) for v in mean), tuple(float(v) for v in std),
                      resize_mode="squash" if squash else "shortest", pipeline="transformers",
                      options=(("processor", type(processor).__name__), ("source", str(source))))
