"""Zero-shot classifiers: an image encoder plus a text head built from class names × templates.

The head is built exactly as CLIP does (Radford et al. 2021, and open_clip's
``build_zero_shot_classifier``): for each class, encode every template filled with the class name,
L2-normalise each embedding, average, and re-normalise. Logits are
``logit_scale × cosine(image, class)`` with the model's own learned scale (100 for CLIP).

Heads are cached on disk keyed by a content hash of (model identity incl. weights hash, class
names, templates); a cache hit returns the exact bytes a recomputation produces.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Protocol, Sequence

import torch
from torch import nn

from roz.datasets.classes import ClassSet
from roz.models.base import ModelIdentity, Preprocess, RozModel
from roz.models.prompts import get_templates, templates_label
from roz.paths import cache_dir

HEAD_CACHE_VERSION = 1


class TextImageEncoder(Protocol):
    """What a zero-shot backend provides (inputs to encode_image are *normalised* images)."""

    def encode_image(self, x: torch.Tensor) -> torch.Tensor: ...
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor: ...
    def logit_scale(self) -> float: ...


def build_head(encoder: TextImageEncoder, class_names: Sequence[str], templates: Sequence[str],
               batch_size: int = 256) -> torch.Tensor:
    """``[C, D]`` float32 class embeddings (unit norm), CLIP's recipe."""
    rows = []
    with torch.inference_mode():
        for name in class_names:
            # per-class prompts (CuPL files, roz.models.prompt_files) are used as they are
            texts = templates.texts_for(name) if hasattr(templates, "texts_for") else [t.format(name) for t in templates]
            embs = []
            for i in range(0, len(texts), batch_size):
                e = encoder.encode_text(texts[i:i + batch_size]).float()
                embs.append(e / e.norm(dim=-1, keepdim=True))
            e = torch.cat(embs).mean(dim=0)
            rows.append(e / e.norm())
    return torch.stack(rows).cpu().contiguous()


def head_key(identity: ModelIdentity, class_names: Sequence[str], templates: Sequence[str]) -> str:
    blob = json.dumps({"v": HEAD_CACHE_VERSION, "identity": identity.to_dict(), "names": list(class_names),
                       "templates": templates.to_json() if hasattr(templates, "to_json") else list(templates)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_head(encoder: TextImageEncoder, identity: ModelIdentity, class_names: Sequence[str],
                templates: Sequence[str], use_cache: bool = True) -> tuple[torch.Tensor, str, bool]:
    """(head, key, hit). Random-init models (no weights hash) are never cached."""
    key = head_key(identity, class_names, templates)
    cacheable = use_cache and identity.weights_sha256 is not None
    head, hit = cached_by_key(key, len(class_names), lambda: build_head(encoder, class_names, templates), cacheable)
    return head, key, hit


def cached_by_key(key: str, n_rows: int, build, cacheable: bool = True) -> tuple[torch.Tensor, bool]:
    """(head, hit): the cached ``[n_rows, D]`` head under ``key``, else ``build()`` (then cached)."""
    path = cache_dir("heads") / f"{key}.pt"
    if cacheable and path.is_file():
        try:
            head = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(head, torch.Tensor) and head.shape[0] == n_rows:
                return head, True
        except Exception:
            path.unlink(missing_ok=True)  # a corrupt cache entry is simply rebuilt
    head = build()
    if cacheable:
        from roz.models.checkpoint import atomic_write_bytes

        buf = io.BytesIO()
        torch.save(head, buf)
        atomic_write_bytes(path, buf.getvalue())
    return head, False


class ZeroShotClassifier(RozModel):
    """Pixels in [0, 1] -> ``logit_scale × cos(encode_image(x), head)`` over ``classes``."""

    role = "zeroshot"

    def __init__(self, encoder: nn.Module, classes: ClassSet, preprocess: Preprocess, identity: ModelIdentity,
                 templates="openai-80", name: str | None = None, use_cache: bool = True, role: str | None = None):
        super().__init__(encoder, classes, preprocess, identity, name=name)
        if role:
            self.role = role
        self.templates_name = templates_label(templates)
        self.templates = get_templates(templates)
        self._use_cache = use_cache
        head, self.head_key, self.head_cache_hit = cached_head(encoder, identity, classes.names, self.templates, use_cache)
        self.register_buffer("head", head, persistent=False)
        self.scale = float(encoder.logit_scale())

    @property
    def encoder(self):
        return self.net

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features from pixels in [0, 1]."""
        f = self.net.encode_image(self.normalize(x)).float()
        return f / f.norm(dim=-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.encode_image(x) @ self.head.to(x.device).t()

    def with_classes(self, classes: ClassSet, templates=None) -> "ZeroShotClassifier":
        """The same encoder with a head over other classes (e.g. only a dataset's subset)."""
        m = ZeroShotClassifier(self.net, classes, self.preprocess_cfg, self.identity,
                               templates=templates if templates is not None else self.templates_name_or_list(),
                               name=self.name, use_cache=self._use_cache, role=self.role)
        return m.to(self._mean.device)

    def templates_name_or_list(self):
        return self.templates_name if not self.templates_name.startswith("custom[") else list(self.templates)

    def describe(self) -> dict:
        d = super().describe()
        d.update({"templates": self.templates_name, "n_templates": len(self.templates), "logit_scale": self.scale,
                  "head_key": self.head_key})
        return d


class OpenClipEncoder(nn.Module):
    """open_clip model + its tokenizer behind the TextImageEncoder protocol."""

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    def encode_image(self, x):
        return self.model.encode_image(x)

    def encode_text(self, texts):
        dev = next(self.model.parameters()).device
        return self.model.encode_text(self.tokenizer(list(texts)).to(dev))

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().clamp(max=100).item())


class HFClipEncoder(nn.Module):
    """transformers CLIPModel (and kin with get_image/text_features) + tokenizer."""

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    @staticmethod
    def _tensor(out):
        if isinstance(out, torch.Tensor):
            return out
        for attr in ("pooler_output", "image_embeds", "text_embeds"):
            if getattr(out, attr, None) is not None:
                return getattr(out, attr)
        raise TypeError(f"unexpected feature output {type(out).__name__}")

    def encode_image(self, x):
        return self._tensor(self.model.get_image_features(pixel_values=x))

    def encode_text(self, texts):
        dev = next(self.model.parameters()).device
        max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        return self._tensor(self.model.get_text_features(input_ids=tok["input_ids"].to(dev),
                                                         attention_mask=tok["attention_mask"].to(dev)))

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().clamp(max=100).item())
