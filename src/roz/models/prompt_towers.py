"""Which text tower a zero-shot model has for prompt learning: :class:`~roz.models.prompt_text.TextTower`
(open_clip) or :class:`~roz.models.prompt_text_hf.HFTextTower` (transformers), or one clear error."""

from __future__ import annotations

from roz.errors import ModelError
from roz.models.prompt_text import TextTower
from roz.models.prompt_text_hf import HFTextTower, is_hf_clip


def text_tower(model_or_encoder) -> "TextTower":
    """The :class:`TextTower` of a zero-shot model (or its encoder); ModelError if it has none."""
    from roz.models.zeroshot import HFClipEncoder, OpenClipEncoder

    enc = getattr(model_or_encoder, "encoder", model_or_encoder)
    inner = getattr(enc, "model", None)
    if isinstance(enc, OpenClipEncoder) and all(hasattr(inner, a) for a in
                                                ("token_embedding", "positional_embedding", "transformer", "ln_final")):
        if getattr(inner, "text_pool_type", "argmax") != "argmax":
            raise ModelError(f"{_name(model_or_encoder)} cannot be prompted: its text tower pools with "
                             f"{inner.text_pool_type!r}, prompt learning here needs CLIP's EOT (argmax) pooling",
                             hint="use an open_clip CLIP with the standard text transformer")
        return TextTower(inner, enc.tokenizer)
    if isinstance(enc, HFClipEncoder) and is_hf_clip(inner):
        return HFTextTower(inner, enc.tokenizer, _name(model_or_encoder))
    raise ModelError(f"{_name(model_or_encoder)} cannot be prompted: prompt learning needs a CLIP text tower "
                     "with reachable token embeddings (open_clip or transformers CLIP models)",
                     hint="use an openclip:, local: or hf: CLIP spec; supervised classifiers (and other "
                          "text towers, e.g. SigLIP) are not supported by `roz prompts`")


def _name(m) -> str:
    return getattr(m, "name", None) or type(m).__name__
