"""Model adapters: a spec string -> a ``RozModel`` (pixels in [0, 1] in, logits out).

Spec grammar (``roz models`` prints it)::

    openclip:ARCH@PRETRAINED_TAG      open_clip hub weights, e.g. openclip:ViT-B-32@laion2b_s34b_b79k
    openclip:ARCH@/path/weights.pt    local open_clip state_dict (+ optional .json sidecar)
    openclip:/path/config.json@PATH   a custom open_clip model config
    hf:REPO_OR_DIR                    transformers CLIP model (zero-shot) or image classifier
    timm:NAME[@PATH]                  timm model; no @ = timm's pretrained weights
    torchvision:NAME[@PATH]           torchvision model; no @ = its DEFAULT weights
    local:/path/NAME.pt               any ROZ checkpoint with a sidecar (source read from it)
    prompted:/path/prompts.json@SPEC  a CLIP (SPEC) with prompts from `roz prompts search` (docs/prompts.md)

``@none`` builds random weights (smoke tests only; recorded as such). Zero-shot models take
``classes`` (class set name or JSON file) and ``templates`` (set name or file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from roz.datasets.classes import ClassSet, get_class_set
from roz.errors import ModelError, RozError
from roz.models import objects as model_objects
from roz.models.base import ModelIdentity, Preprocess, RozModel
from roz.models.bpe import check_vocab_fits, sidecar_tokenizer
from roz.models.checkpoint import load_state_dict, read_sidecar, sha256_file
from roz.models.hub import hf_cached, require_download, url_cached
from roz.models.transforms import (
    openclip_config,
    resolve_openclip,
    resolve_timm,
    resolve_torchvision,
    resolve_transformers,
)
from roz.models.zeroshot import HFClipEncoder, OpenClipEncoder, ZeroShotClassifier
from roz.registry import Registry

CONFIG_DIR = Path(__file__).parent / "configs"
# Model sources: SOURCE in a spec SOURCE:NAME[@WEIGHTS] -> the function that builds it
# (``register_model_source`` adds one; the built-in five are registered at the end of this module).
MODEL_SOURCES: Registry[Callable[..., RozModel]] = Registry(
    "model source", ModelError, hint="write SOURCE:NAME[@WEIGHTS], e.g. timm:resnet50")
SOURCES = ("openclip", "hf", "timm", "torchvision", "local")  # the built-in sources, in the docs' order


def register_model_source(name: str, build: Callable[..., RozModel]) -> None:
    """``build(spec, arch, weights, classes, templates, *, label, head_cache, role) -> RozModel``."""
    MODEL_SOURCES.register(name, build)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_sha_cache: dict[tuple, str] = {}


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``'timm:resnet50@/w.pt'`` -> ``('timm', 'resnet50', '/w.pt')``."""
    if ":" not in spec:
        raise ModelError(f"model spec {spec!r} has no source prefix",
                         hint=f"write SOURCE:NAME[@WEIGHTS] with SOURCE one of {', '.join(MODEL_SOURCES)}, "
                              "e.g. timm:resnet50")
    source, rest = spec.split(":", 1)
    if source not in MODEL_SOURCES:
        raise ModelError(f"unknown model source {source!r} in spec {spec!r}",
                         hint=f"use one of {', '.join(MODEL_SOURCES)}")
    name, _, weights = rest.partition("@")
    if not name:
        raise ModelError(f"model spec {spec!r} names no architecture")
    return source, name, (weights or None)


def _file_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        _sha_cache[key] = sha256_file(path)
    return _sha_cache[key]


def _is_path(w: str | None) -> bool:
    return w is not None and (os.sep in w or w.endswith((".pt", ".pth", ".bin", ".safetensors")) or Path(w).exists())


def _load_local(path: Path, sidecar: dict | None) -> tuple[dict, str]:
    if not path.is_file():
        raise ModelError(f"weight file not found: {path}", hint="check the @PATH part of the model spec")
    sha = _file_sha(path)
    sd = load_state_dict(path, verify=(sidecar or {}).get("sha256"))
    return sd, sha


def _load_into(module: torch.nn.Module, sd: dict, what: str) -> None:
    missing, unexpected = module.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith(("num_batches_tracked", "attn_mask"))]
    if missing or unexpected:
        raise ModelError(
            f"{what}: weights do not fit the architecture ({len(missing)} missing, {len(unexpected)} unexpected keys, "
            f"e.g. {(missing or unexpected)[:3]})",
            hint="the file is partial or belongs to another architecture/width; check the spec and sidecar kwargs",
        )


def _preprocess_from(sidecar: dict | None, default: Preprocess) -> Preprocess:
    """A ROZ checkpoint's sidecar states its preprocessing: ROZ's own transform (``roz`` pipeline)
    with those values; otherwise the library's eval transform (``default``)."""
    p = (sidecar or {}).get("preprocess")
    if not p:
        return default
    return Preprocess(int(p["input_size"]), int(p.get("resize_size", p["input_size"])), p.get("interpolation", "bicubic"),
                      tuple(p.get("mean", default.mean)), tuple(p.get("std", default.std)),
                      resize_mode=p.get("resize_mode", "shortest"), pipeline="roz")


def _classes_from(option, sidecar: dict | None, default: str = "imagenet-1k") -> ClassSet:
    c = option or (sidecar or {}).get("classes") or default
    if isinstance(c, list):
        base = get_class_set("imagenet-1k")
        return base.subset(c, name=f"custom[{len(c)}]")
    if isinstance(c, ClassSet):
        return c
    return get_class_set(c)


# --------------------------------------------------------------------------------------- open_clip
class _quiet_root_logger:
    def __enter__(self):
        import logging

        self.logger = logging.getLogger()
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *a):
        self.logger.setLevel(self.level)


def _register_configs() -> None:
    import open_clip

    if CONFIG_DIR.is_dir():
        open_clip.add_model_config(CONFIG_DIR)


def _openclip(spec, arch, weights, classes, templates, **kw) -> RozModel:
    import open_clip

    _register_configs()
    if arch.endswith(".json"):
        cfg = Path(arch)
        if not cfg.is_file():
            raise ModelError(f"open_clip config file not found: {cfg}")
        open_clip.add_model_config(cfg)
        arch = cfg.stem
    if arch not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(arch, open_clip.list_models(), n=3)
        raise ModelError(f"unknown open_clip architecture {arch!r}",
                         hint=(f"did you mean {', '.join(close)}? " if close else "") + "see open_clip.list_models()")
    sidecar, sha, tag, tokenizer, tokenizer_sha = None, None, None, None, None
    if weights is None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelError(f"{spec}: say which weights to load",
                         hint=f"append @TAG (one of {', '.join(tags) or 'none published'}), @/path/to/weights.pt, or @none")
    if weights == "none":
        model = open_clip.create_model(arch, pretrained=None)
    elif _is_path(weights):
        path = Path(weights).expanduser()
        sidecar = read_sidecar(path)
        if (sidecar or {}).get("tokenizer"):  # a compact vocabulary shipped beside the weights (roz.models.bpe)
            tokenizer, tokenizer_sha = sidecar_tokenizer(sidecar["tokenizer"], path, arch)
        sd, sha = _load_local(path, sidecar)
        with _quiet_root_logger():  # open_clip warns "initialized randomly": we load the weights next
            model = open_clip.create_model(arch, pretrained=None, **(sidecar or {}).get("kwargs", {}))
        _load_into(model, sd, spec)
    else:
        tag = weights
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        if not cfg:
            raise ModelError(f"open_clip has no pretrained tag {tag!r} for {arch}",
                             hint=f"available: {', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'}")
        hub = (cfg.get("hf_hub") or "").rstrip("/")
        cached = (hf_cached(hub) if hub else False) or (url_cached(cfg.get("url", ""), Path.home() / ".cache" / "clip")
                                                       if cfg.get("url") else False)
        require_download(f"{arch}@{tag}", "huggingface.co" if hub else "openaipublic.azureedge.net", cached,
                         "download them on a machine with internet (they are cached), or pass @/path/to/weights.pt")
        model = open_clip.create_model(arch, pretrained=tag)
        sha = f"tag:{tag}"
    model.eval()
    # open_clip's final preprocessing config (defaults < tag's fields, e.g. SigLIP's 'squash' < tower size):
    # the one create_model_and_transforms builds preprocess_val from.
    pc = getattr(model.visual, "preprocess_cfg", None) or openclip_config(arch, tag, model.visual.image_size)
    pre = _preprocess_from(sidecar, resolve_openclip(pc))
    tokenizer = tokenizer or open_clip.get_tokenizer(arch)
    check_vocab_fits(tokenizer, model, spec)
    extra = {"open_clip_tag": tag} if tag else {}
    if tokenizer_sha:  # the tokenizer is part of what the numbers depend on (result ids, head cache)
        extra["tokenizer_sha256"] = tokenizer_sha
    ident = ModelIdentity(spec=spec, source="openclip", arch=arch, weights=weights, weights_sha256=sha, extra=extra)
    templates = templates or (sidecar or {}).get("templates") or "openai-80"
    return ZeroShotClassifier(OpenClipEncoder(model, tokenizer), _classes_from(classes, sidecar), pre, ident,
                              templates=templates, name=kw.get("label"), use_cache=kw.get("head_cache", True),
                              role=kw.get("role"))


# ------------------------------------------------------------------------------------------ HF
def _hf(spec, name, weights, classes, templates, **kw) -> RozModel:
    from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, AutoTokenizer

    local = Path(name).expanduser()
    if local.exists():
        src, local_only = str(local), True
        if not (local / "config.json").is_file():
            raise ModelError(f"{local} is not a transformers model directory (no config.json)")
    else:
        src, local_only = name, False
        require_download(name, "huggingface.co", hf_cached(name, ("config.json",)),
                         "download the model on a machine with internet (save_pretrained), then pass hf:/path/to/dir")
    try:
        config = AutoConfig.from_pretrained(src, local_files_only=local_only)
    except OSError as e:
        raise ModelError(f"cannot read transformers config for {name}: {str(e).splitlines()[0]}") from None
    pre = _hf_preprocess(src, local_only)
    weights_file = next((local / f for f in ("model.safetensors", "pytorch_model.bin") if (local / f).is_file()), None) \
        if local_only else None
    sha = _file_sha(weights_file) if weights_file else f"hub:{name}"
    ident = ModelIdentity(spec=spec, source="hf", arch=config.model_type, weights=src, weights_sha256=sha)
    if hasattr(config, "text_config") and hasattr(config, "vision_config"):
        model = AutoModel.from_pretrained(src, local_files_only=local_only).eval()
        try:
            tok = AutoTokenizer.from_pretrained(src, local_files_only=local_only)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot load the tokenizer of {name}: {str(e).splitlines()[0]}",
                             hint="save the tokenizer files (vocab.json, merges.txt) beside the model") from None
        # Offline, transformers' CLIPTokenizer can silently fall back to a near-empty vocabulary,
        # which would make every class prompt identical: refuse it loudly.
        if len(tok) < 1000:
            raise ModelError(f"the tokenizer of {name} has only {len(tok)} tokens: its vocabulary did not load",
                             hint="put vocab.json and merges.txt (or tokenizer.json) in the model directory")
        templates = templates or "openai-80"
        return ZeroShotClassifier(HFClipEncoder(model, tok), _classes_from(classes, None), pre, ident,
                                  templates=templates, name=kw.get("label"), use_cache=kw.get("head_cache", True),
                                  role=kw.get("role"))
    model = AutoModelForImageClassification.from_pretrained(src, local_files_only=local_only).eval()
    n = model.config.num_labels
    cs = _classes_from(classes, None)
    if len(cs) != n:
        raise ModelError(f"{name} predicts {n} classes but class set {cs.name!r} has {len(cs)}",
                         hint="pass classes= a class set (or JSON file) listing the model's output classes in order")
    return RozModel(_HFLogits(model), cs, pre, ident, name=kw.get("label"))


def _hf_preprocess(src: str, local_only: bool) -> Preprocess:
    """The model's own image processor (run with ``do_normalize=False``); without one, CLIP's
    resize-224 / crop-224 / bicubic / CLIP mean-std through ROZ's transform, recorded as such."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(src, local_files_only=local_only)
    except Exception as e:  # noqa: BLE001  (any loader failure is one readable line)
        if local_only and (Path(src) / "preprocessor_config.json").is_file():
            raise ModelError(f"cannot load the image processor of {src}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200]}",
                             hint="fix or remove preprocessor_config.json (without one, CLIP's 224 px defaults apply)"
                             ) from None
        return Preprocess(224, 224, "bicubic", _CLIP_MEAN, _CLIP_STD, pipeline="roz")
    return resolve_transformers(processor, src)


class _HFLogits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(pixel_values=x).logits


# ---------------------------------------------------------------------------------------- timm
def _timm(spec, name, weights, classes, templates, **kw) -> RozModel:
    import timm

    if name not in timm.list_models() and not timm.is_model(name):
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ModelError(f"unknown timm model {name!r}", hint=(f"did you mean {', '.join(close)}? " if close else "")
                         + "see timm.list_models()")
    sidecar, sha = None, None
    if _is_path(weights):
        path = Path(weights).expanduser()
        sidecar = read_sidecar(path)
        sd, sha = _load_local(path, sidecar)
        cs = _classes_from(classes, sidecar)
        kwargs = {"num_classes": len(cs), **(sidecar or {}).get("kwargs", {})}
        model = timm.create_model(name, pretrained=False, **kwargs)
        _load_into(model, sd, spec)
    else:
        cs = _classes_from(classes, None)
        if weights == "none":
            model = timm.create_model(name, pretrained=False, num_classes=len(cs))
        else:
            pcfg = timm.models.get_pretrained_cfg(name + (f".{weights}" if weights else ""))
            hub = getattr(pcfg, "hf_hub_id", None) if pcfg else None
            require_download(spec, "huggingface.co", bool(hub) and hf_cached(hub),
                             "download on a machine with internet (cached), or pass timm:NAME@/path/to/weights.pth")
            model = timm.create_model(name + (f".{weights}" if weights else ""), pretrained=True)
            sha = f"hub:{hub}"
    model.eval()
    default = resolve_timm(timm.data.resolve_data_config({}, model=model))
    ident = ModelIdentity(spec=spec, source="timm", arch=name, weights=weights, weights_sha256=sha,
                          extra=(sidecar or {}).get("extra", {}))
    return RozModel(model, cs, _preprocess_from(sidecar, default), ident, name=kw.get("label"))


# --------------------------------------------------------------------------------- torchvision
def _torchvision(spec, name, weights, classes, templates, **kw) -> RozModel:
    import torchvision

    if name not in torchvision.models.list_models():
        raise ModelError(f"unknown torchvision model {name!r}", hint="see torchvision.models.list_models()")
    sidecar, sha = None, None
    # no weights enum: torchvision's classic ImageNet eval transform (its *_V1 weights' transforms())
    default = Preprocess(224, 256, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), pipeline="torchvision",
                         options=(("antialias", True), ("weights_transforms", None)))
    if _is_path(weights):
        path = Path(weights).expanduser()
        sidecar = read_sidecar(path)
        sd, sha = _load_local(path, sidecar)
        cs = _classes_from(classes, sidecar)
        model = torchvision.models.get_model(name, weights=None, num_classes=len(cs), **(sidecar or {}).get("kwargs", {}))
        _load_into(model, sd, spec)
    else:
        cs = _classes_from(classes, None)
        if weights == "none":
            model = torchvision.models.get_model(name, weights=None, num_classes=len(cs))
        else:
            try:
                w = torchvision.models.get_model_weights(name)[weights] if weights else \
                    torchvision.models.get_model_weights(name).DEFAULT
            except KeyError:
                raise ModelError(f"torchvision has no weights {weights!r} for {name}") from None
            require_download(spec, "download.pytorch.org", url_cached(w.url, Path(torch.hub.get_dir()) / "checkpoints"),
                             "download on a machine with internet (cached), or pass torchvision:NAME@/path/to/weights.pth")
            model = torchvision.models.get_model(name, weights=w)
            default = resolve_torchvision(w.transforms(), str(w))
            sha = f"torchvision:{w}"
    model.eval()
    ident = ModelIdentity(spec=spec, source="torchvision", arch=name, weights=weights, weights_sha256=sha,
                          extra=(sidecar or {}).get("extra", {}))
    return RozModel(model, cs, _preprocess_from(sidecar, default), ident, name=kw.get("label"))


def _local(spec, name, weights, classes, templates, **kw) -> RozModel:
    path = Path(name).expanduser()
    side = read_sidecar(path)
    if side is None:
        raise ModelError(f"{spec}: no sidecar {path.with_suffix('.json')}",
                         hint="local: specs need NAME.json beside NAME.pt; otherwise use timm:/torchvision:/openclip: ARCH@PATH")
    src = side.get("source")
    if src not in ("timm", "torchvision", "openclip"):
        raise ModelError(f"sidecar {path.with_suffix('.json')} names unsupported source {src!r}")
    inner = f"{src}:{side['arch']}@{path.with_suffix('.pt')}"
    m = MODEL_SOURCES.get(src)(spec, side["arch"], str(path.with_suffix(".pt")), classes, templates, **kw)
    m.identity.extra["resolved_spec"] = inner
    return m


def _prompted(spec, name, weights, classes, templates, **kw) -> RozModel:
    """``prompted:/path/prompts.json@BASE_SPEC``: a CLIP with searched prompts (roz.models.prompted)."""
    from roz.models.prompted import build_prompted

    return build_prompted(spec, name, weights, classes, templates, create_model=create_model, **kw)


for _name, _build in (("openclip", _openclip), ("hf", _hf), ("timm", _timm), ("torchvision", _torchvision),
                      ("local", _local), ("prompted", _prompted)):
    register_model_source(_name, _build)
register_model_source("python", model_objects.build)  # model objects given to the API (roz.models.objects)


def create_model(spec: str, *, classes=None, templates=None, device: str | torch.device = "cpu",
                 name: str | None = None, role: str | None = None, head_cache: bool = True) -> RozModel:
    """Build a model from a spec string (see module docstring). ``classes``/``templates`` apply to
    zero-shot models; ``role`` overrides the reported role (e.g. ``zeroshot-auto`` for CLIP-Auto)."""
    source, arch, weights = parse_spec(spec)
    try:
        model = MODEL_SOURCES.get(source)(spec, arch, weights, classes, templates, label=name, head_cache=head_cache,
                                          role=role)
    except RozError:
        raise
    except Exception as e:  # a library failure deep inside becomes one readable line
        raise ModelError(f"could not build {spec}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
    if role and model.role != role:
        model.role = role
    return model.to(device)
