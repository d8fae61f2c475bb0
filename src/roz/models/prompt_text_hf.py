"""The text tower of a Hugging Face (transformers) ``CLIPModel``, opened up for prompt learning.

The counterpart of :class:`roz.models.prompt_text.TextTower` for ``hf:`` CLIPs. transformers'
``CLIPTextModel.forward`` takes only ``input_ids``, so :meth:`HFTextTower.encode_embeds` runs the
same steps from its own modules: ``embeddings(inputs_embeds=...)`` (adds the position
embeddings), ``create_causal_mask`` + ``encoder(..., is_causal=True)`` exactly as the forward
builds them, ``final_layer_norm``, pooling at the EOS position and ``text_projection``.
:meth:`HFTextTower.encode_ids` is the model's own ``get_text_features``.

Sequences use the same layout as open_clip's: ``[BOS] ... [EOS] 0 0 ...``. Padding with id 0 (not
the tokenizer's pad token, which for CLIP is EOS itself) keeps the first EOS the only one, so both
of transformers' pooling rules land on it: the legacy ``eos_token_id == 2`` configs pool at the
largest id (EOS, 49407, is the largest) and newer ones at the first ``eos_token_id``.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from roz.errors import ModelError
from roz.models.prompt_text import TextTower


def is_hf_clip(model) -> bool:
    """Whether ``model`` is a transformers CLIPModel whose text tower can be run on embeddings."""
    try:
        from transformers import CLIPModel
        from transformers.masking_utils import create_causal_mask  # noqa: F401  (encode_embeds needs it)
    except ImportError:  # transformers is optional; < 4.48 has no masking_utils
        return False
    text = getattr(model, "text_model", None)
    return isinstance(model, CLIPModel) and all(
        hasattr(text, a) for a in ("embeddings", "encoder", "final_layer_norm", "config")) \
        and hasattr(model, "text_projection")


class HFTextTower(TextTower):
    """transformers CLIP text model on ids or on embeddings (frozen; gradients flow to the inputs)."""

    def __init__(self, model, tokenizer, name: str = "this model"):
        torch.nn.Module.__init__(self)
        self.model = model
        self.tokenizer = tokenizer
        self.sot = int(tokenizer.bos_token_id)
        self.eot = int(tokenizer.eos_token_id)
        text = model.text_model
        self.context_length = int(text.embeddings.position_embedding.weight.shape[0])
        self.pad = 0  # see the module docstring: never EOS, so the first EOS is the only one
        pool_id = int(getattr(text, "eos_token_id", getattr(text.config, "eos_token_id", 2)))
        if pool_id != 2 and pool_id != self.eot:
            raise ModelError(f"{name} cannot be prompted: its text config pools at eos_token_id={pool_id} "
                             f"but its tokenizer ends sequences with id {self.eot}",
                             hint="use a CLIP whose tokenizer and text config agree on the end-of-text token")
        if pool_id == 2 and self.eot < self.embeddings.shape[0] - 1:
            raise ModelError(f"{name} cannot be prompted: its text config pools at the largest id, which is "
                             f"not its end-of-text token {self.eot}",
                             hint="use a CLIP with the standard CLIP tokenizer")

    @property
    def embeddings(self) -> torch.Tensor:
        """``[V, D]`` token-embedding matrix."""
        return self.model.text_model.embeddings.token_embedding.weight

    @property
    def vocab_size(self) -> int:
        return min(int(self.embeddings.shape[0]), len(self.tokenizer))  # len: with added tokens

    def token_ids(self, text: str) -> list[int]:
        """BPE ids of ``text`` without BOS/EOS."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids]).strip()

    def encode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Text features of id sequences: the model's own ``get_text_features`` (no re-tokenising)."""
        from roz.models.zeroshot import HFClipEncoder

        return HFClipEncoder._tensor(self.model.get_text_features(input_ids=ids.to(self.device)))

    def encode_embeds(self, embeds: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """Text features of ``[B, L, D]`` input embeddings, pooled at ``eot_index``: the steps of
        transformers' ``CLIPTextModel.forward`` after its token lookup (it has no embeddings entry
        point), then ``text_projection`` as in ``get_text_features``."""
        from transformers.masking_utils import create_causal_mask

        text = self.model.text_model
        embeds = embeds.to(self.embeddings.dtype)
        if "inputs_embeds" in inspect.signature(text.embeddings.forward).parameters:
            hidden = text.embeddings(inputs_embeds=embeds)
        else:  # older CLIPTextEmbeddings: add the (absolute) position embeddings ourselves
            pos = torch.arange(embeds.shape[1], device=embeds.device)
            hidden = embeds + text.embeddings.position_embedding(pos)[None]
        mask = create_causal_mask(config=text.config, inputs_embeds=hidden, attention_mask=None, cache=None)
        out = text.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True)
        x = text.final_layer_norm(out.last_hidden_state)
        x = x[torch.arange(x.shape[0], device=x.device), eot_index.to(x.device)]
        return self.model.text_projection(x)
