"""The text tower of a CLIP, opened up for prompt learning (AutoPrompt, CoOp).

Prompt learning needs three things the zero-shot head does not: the token-embedding matrix, the
tokenizer's ids (without re-tokenising text), and the text transformer run on *embeddings* instead
of ids. :class:`TextTower` provides them for open_clip CLIPs (``OpenClipEncoder``), and
:class:`~roz.models.prompt_text_hf.HFTextTower` for transformers CLIPs (``hf:``);
:func:`roz.models.prompt_towers.text_tower` picks the one a model has, or raises one
:class:`~roz.errors.ModelError` ("cannot be prompted").

Sequences follow the tokenizer's own layout: ``[SOT] ... [EOT] 0 0 ...`` (open_clip pads with id 0),
truncated to the context length with EOT kept last, as ``open_clip.tokenize`` does. Features are
pooled at the EOT position, which is where open_clip's ``argmax`` pooling lands because EOT is the
largest id in the vocabulary.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn



class TextTower(nn.Module):
    """open_clip text transformer on ids or on embeddings (frozen; gradients flow to the inputs)."""

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.sot = int(tokenizer.sot_token_id)
        self.eot = int(tokenizer.eot_token_id)
        self.context_length = int(model.positional_embedding.shape[0])
        self.pad = 0  # open_clip.tokenize pads with 0

    @property
    def embeddings(self) -> torch.Tensor:
        """``[V, D]`` token-embedding matrix."""
        return self.model.token_embedding.weight

    @property
    def device(self) -> torch.device:
        return self.embeddings.device

    @property
    def vocab_size(self) -> int:
        """Ids ``0 .. vocab_size - 1`` are tokens the tokenizer knows and the embedding holds. A compact
        tokenizer (roz.models.bpe) may know fewer tokens than the embedding has rows; an id past its EOT
        would also capture open_clip's argmax (EOT) pooling."""
        rows = int(self.embeddings.shape[0])
        return min(rows, int(getattr(self.tokenizer, "vocab_size", rows)))

    def token_ids(self, text: str) -> list[int]:
        """BPE ids of ``text`` without SOT/EOT (open_clip's SimpleTokenizer.encode)."""
        return list(self.tokenizer.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids]).strip()

    def special_ids(self) -> set[int]:
        return {self.sot, self.eot, self.pad}

    def sequence(self, prefix: Sequence[int], name: Sequence[int], suffix: Sequence[int]) -> list[int]:
        """``[SOT] prefix name suffix [EOT]`` padded to the context length (EOT kept on truncation)."""
        body = [self.sot, *prefix, *name, *suffix][:self.context_length - 1] + [self.eot]
        return body + [self.pad] * (self.context_length - len(body))

    def encode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Text features of id sequences: open_clip's own ``encode_text`` (no re-tokenising)."""
        return self.model.encode_text(ids.to(self.device))

    def encode_embeds(self, embeds: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """Text features of ``[B, L, D]`` input embeddings (L ≤ context length), pooled at
        ``eot_index``. The same computation as open_clip's ``CLIP.encode_text`` after its
        ``token_embedding`` lookup; written out because open_clip has no embeddings entry point.
        With the causal mask, tokens after EOT never reach it, so a sequence cut after its
        longest EOT gives the same features as the padded one (up to float rounding)."""
        m = self.model
        cast = m.transformer.get_cast_dtype()
        length = embeds.shape[1]
        x = embeds.to(cast) + m.positional_embedding[:length].to(cast)
        mask = m.attn_mask[:length, :length] if m.attn_mask is not None else None
        x = m.transformer(x, attn_mask=mask)
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot_index.to(x.device)]
        if m.text_projection is not None:
            x = m.text_projection(x) if isinstance(m.text_projection, nn.Linear) else x @ m.text_projection
        return x

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().clamp(max=100).item())
