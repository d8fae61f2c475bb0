"""Prompted CLIPs (CLIP-Auto): a prompt artefact + its base CLIP, as an ordinary model.

Spec: ``prompted:/path/prompts.json@BASE_SPEC`` (e.g. ``prompted:runs/p.json@local:clip.pt``), or in a
run config ``{spec: BASE_SPEC, prompts: /path/prompts.json}``. Role ``zeroshot-auto``.

The artefact (``prompts.json``, written by :mod:`roz.models.prompt_search`) records the base model's
identity and weights hash, the few-shot data, method, hyper-parameters, seed and scores. Discrete
prompts (AutoPrompt) are stored as token ids ``prefix_ids`` / ``suffix_ids`` around the class name
and evaluated from those ids; their ``text`` is only a label (re-tokenising it can change the ids).
CoOp's context vectors live in a tensor file beside it (``context.file``), loaded with
``weights_only=True`` after checking its sha256. Loading refuses an artefact whose recorded weights
hash differs from the base model's: prompts are searched for one set of weights.

The head is the CLIP recipe over the artefact's prompts (mean of normalised class-prompt embeddings,
renormalised; CoOp: the single learned prompt), cached by a content hash of the base identity, the
class names and the artefact's sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from roz.errors import ModelError
from roz.files import sha256_file
from roz.models.base import ModelIdentity, RozModel
from roz.models.zeroshot import HEAD_CACHE_VERSION, ZeroShotClassifier, cached_by_key

PROMPTS_FORMAT = 1
METHODS = ("autoprompt", "coop")


def load_artefact(path: str | Path) -> dict:
    """Read and check ``prompts.json`` (and its CoOp context file); adds ``_sha256`` / ``_context``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"prompt artefact not found: {path}",
                         hint="write one with `roz prompts search ... --out prompts.json`")
    try:
        art = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"prompt artefact {path} is not valid JSON: {e}") from None
    if not isinstance(art, dict) or art.get("roz_prompts") != PROMPTS_FORMAT or art.get("method") not in METHODS:
        raise ModelError(f"{path} is not a ROZ prompt artefact (format {PROMPTS_FORMAT}, method one of {METHODS})",
                         hint="write one with `roz prompts search`")
    art["_sha256"] = sha256_file(path)
    art["_path"] = str(path.resolve())
    if art["method"] == "coop":
        art["_context"] = _load_context(path, art.get("context") or {})
    elif not art.get("prompts"):
        raise ModelError(f"{path}: no prompts recorded")
    return art


def _load_context(path: Path, ctx: dict) -> torch.Tensor:
    file = path.parent / str(ctx.get("file", ""))
    if not ctx.get("file") or not file.is_file():
        raise ModelError(f"{path}: CoOp context file {file} is missing", hint="keep the .pt file beside prompts.json")
    got = sha256_file(file)
    if got != ctx.get("sha256"):
        raise ModelError(f"CoOp context {file} does not match its recorded sha256 ({got[:12]}… != "
                         f"{str(ctx.get('sha256'))[:12]}…)", hint="the file was changed or belongs to another artefact")
    tensor = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(tensor, torch.Tensor) or list(tensor.shape) != list(ctx.get("shape", [])):
        raise ModelError(f"CoOp context {file} is not a tensor of shape {ctx.get('shape')}")
    return tensor


def prompt_head(tower, art: dict, class_names, wnids) -> torch.Tensor:
    """``[C, D]`` unit-norm class embeddings from an artefact's prompts (ids) or context."""
    from roz.models.coop import ContextPrompts

    with torch.no_grad():
        if art["method"] == "coop":
            ctx = art["_context"]
            if art["context"].get("class_specific"):
                rows = {w: i for i, w in enumerate(art["context"]["wnids"])}
                missing = [w for w in wnids if w not in rows]
                if missing:
                    raise ModelError(f"class-specific CoOp context has no vectors for {len(missing)} class(es), "
                                     f"e.g. {missing[:3]}", hint="use the class set the context was trained on")
                ctx = ctx[[rows[w] for w in wnids]]
            prompts = ContextPrompts(tower, class_names, art["context"]["n_ctx"], art["context"].get("suffix", "."))
            return prompts.features(ctx.to(tower.device)).cpu().contiguous()
        return ids_head(tower, [(p["prefix_ids"], p["suffix_ids"]) for p in art["prompts"]], class_names)


def ids_head(tower, prompts, class_names, chunk: int = 1024) -> torch.Tensor:
    """CLIP's head recipe over prompts given as (prefix ids, suffix ids), never re-tokenised."""
    rows = []
    with torch.no_grad():
        for name in class_names:
            name_ids = tower.token_ids(name)
            ids = torch.tensor([tower.sequence(p, name_ids, s) for p, s in prompts], dtype=torch.long)
            e = torch.cat([tower.encode_ids(ids[i:i + chunk]).float() for i in range(0, len(ids), chunk)])
            e = (e / e.norm(dim=-1, keepdim=True)).mean(0)
            rows.append(e / e.norm())
    return torch.stack(rows).cpu().contiguous()


class PromptedClassifier(ZeroShotClassifier):
    """A zero-shot classifier whose head comes from a prompt artefact (role ``zeroshot-auto``)."""

    role = "zeroshot-auto"

    def __init__(self, encoder, classes, preprocess, identity: ModelIdentity, artefact: dict,
                 name: str | None = None, use_cache: bool = True, role: str | None = None):
        from roz.models.prompt_towers import text_tower

        RozModel.__init__(self, encoder, classes, preprocess, identity, name=name)
        self.role = role or "zeroshot-auto"
        self.artefact = artefact
        self._use_cache = use_cache
        self.templates_name = f"prompts:{artefact['method']}"
        self.templates = tuple(p.get("text", "") for p in artefact.get("prompts", [])) or ("<learned context>",)
        key = hashlib.sha256(json.dumps({"v": HEAD_CACHE_VERSION, "identity": identity.to_dict(),
                                         "names": list(classes.names), "wnids": list(classes.wnids),
                                         "prompts_sha256": artefact["_sha256"]}, sort_keys=True).encode()).hexdigest()
        tower = text_tower(encoder)
        head, self.head_cache_hit = cached_by_key(
            key, len(classes), lambda: prompt_head(tower, artefact, classes.names, classes.wnids),
            use_cache and identity.weights_sha256 is not None)
        self.head_key = key
        self.register_buffer("head", head, persistent=False)
        self.scale = float(encoder.logit_scale())

    def with_classes(self, classes, templates=None) -> "PromptedClassifier":
        m = PromptedClassifier(self.net, classes, self.preprocess_cfg, self.identity, self.artefact, name=self.name,
                               use_cache=self._use_cache, role=self.role)
        return m.to(self._mean.device)

    def describe(self) -> dict:
        d = super().describe()
        d["prompts"] = {"method": self.artefact["method"], "path": self.artefact["_path"],
                        "sha256": self.artefact["_sha256"], "n_prompts": len(self.artefact.get("prompts", []))}
        return d


def prompted_spec(prompts: str | Path, base_spec: str) -> str:
    """The model spec of ``base_spec`` with the prompt artefact at ``prompts``."""
    path = Path(prompts).expanduser()
    if not path.is_file():
        raise ModelError(f"prompt artefact not found: {path}", hint="write one with `roz prompts search`")
    if "@" in str(path.resolve()):
        raise ModelError(f"prompt artefact path {path} contains '@', which separates it from the base spec",
                         hint="move or rename the artefact")
    return f"prompted:{path.resolve()}@{base_spec}"


def build_prompted(spec, name, weights, classes, templates, *, create_model, **kw) -> RozModel:
    """Model source ``prompted:ARTEFACT@BASE_SPEC``; ``create_model`` builds the base (passed in by
    :mod:`roz.models.adapters`, which registers this source, so the two modules do not import each other)."""
    if not weights:
        raise ModelError(f"{spec}: no base model", hint="write prompted:/path/prompts.json@BASE_SPEC")
    if templates:
        raise ModelError(f"{spec}: a prompted model takes its prompts from the artefact, not templates={templates!r}",
                         hint="drop 'templates' from this model entry")
    art = load_artefact(name)
    base = create_model(weights, classes=classes, templates="photo", head_cache=kw.get("head_cache", True))
    if not isinstance(base, ZeroShotClassifier):
        raise ModelError(f"{weights} cannot be prompted: it is a {base.role} classifier, not a CLIP",
                         hint="prompted: needs a zero-shot (CLIP) base model")
    want = (art.get("model") or {}).get("weights_sha256")
    if want != base.identity.weights_sha256:
        raise ModelError(f"{name} was searched for weights {str(want)[:12]}…, but {weights} has "
                         f"{str(base.identity.weights_sha256)[:12]}…",
                         hint="use the base model the artefact records (model.spec), or search prompts for this one")
    ident = ModelIdentity(spec=spec, source="prompted", arch=base.identity.arch, weights=base.identity.weights,
                          weights_sha256=base.identity.weights_sha256,
                          extra={"base": base.identity.to_dict(), "prompts": art["_path"],
                                 "prompts_sha256": art["_sha256"], "method": art["method"]})
    return PromptedClassifier(base.net, base.classes, base.preprocess_cfg, ident, art, name=kw.get("label"),
                              use_cache=kw.get("head_cache", True), role=kw.get("role"))
