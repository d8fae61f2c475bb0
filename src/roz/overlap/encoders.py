"""Named image encoders for the embedding overlap detector.

``load_encoder(spec)``: ``"tiny"`` (the training-free :class:`~roz.overlap.embed.TinyImageEncoder`)
or any ROZ model spec of an image-text model (``openclip:RN50x16@openai`` — the paper's encoder
and the default —, ``openclip:ARCH@/path/weights.pt``, ``hf:...``, ``local:...``), built with
ROZ's normal adapters (download checks, local weights, identity) and a one-class head so no
ImageNet head is computed. An ``nn.Module`` is taken as is (its ``name`` attribute, else its class
name, is the encoder's name).

The encoder's ``name`` and output ``dim`` are recorded with every embedding shard and every
result; test and corpus embeddings are compared only when both match (``check_compatible``).
Preprocessing (``embed.py``): the whole image resized (bicubic) to the encoder's input size, no
crop, pixels in [0, 1], the model's own normalisation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from roz.errors import ModelError, RozError
from roz.overlap.embed import TinyImageEncoder, _to_tensor, embed_tensor, encoder_input_size

DEFAULT_ENCODER = "openclip:RN50x16@openai"
PREPROCESS = "whole image resized (bicubic) to input_size x input_size, no crop; pixels in [0, 1]"


class ImageEncoder:
    """An image encoder with a name: PIL images -> L2-normalised float32 ``[N, dim]``."""

    def __init__(self, module, name: str, device: str | torch.device = "cpu", input_size: int | None = None):
        self.module = module.eval().to(device) if isinstance(module, nn.Module) else module
        self.name, self.device = str(name), torch.device(device)
        self.input_size = int(input_size or encoder_input_size(module))
        # The weights, not only the spec: a spec such as ``local:PATH`` names a file whose contents
        # can change, and embeddings of other weights must never be reused for it.
        identity = getattr(module, "identity", None)
        self.weights_sha256: str | None = getattr(identity, "weights_sha256", None)
        self._dim: int | None = None

    @property
    def cache_key(self) -> str:
        """What identifies its embeddings: the name, plus the weights' sha256 when known."""
        return self.name + (f"#sha256:{self.weights_sha256}" if self.weights_sha256 else "")

    def embed(self, images) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        x = torch.stack([_to_tensor(im.convert("RGB"), self.input_size) for im in images]).float().div_(255.0)
        f = embed_tensor(x.to(self.device), self.module)
        self._dim = f.shape[1]
        return f

    @property
    def dim(self) -> int:
        if self._dim is None:
            from PIL import Image

            self.embed([Image.new("RGB", (self.input_size, self.input_size))])
        return int(self._dim)

    def info(self) -> dict:
        return {"encoder": self.name, "weights_sha256": self.weights_sha256, "dim": self.dim,
                "input_size": self.input_size, "preprocess": PREPROCESS}


def load_encoder(spec=DEFAULT_ENCODER, device: str | torch.device = "cpu") -> ImageEncoder:
    if isinstance(spec, ImageEncoder):
        return spec
    if isinstance(spec, nn.Module):
        return ImageEncoder(spec, getattr(spec, "name", None) or type(spec).__name__, device)
    if not isinstance(spec, str) or not spec:
        raise RozError(f"encoder must be a spec string or a torch module, got {spec!r}",
                       hint=f"e.g. --encoder {DEFAULT_ENCODER} or --encoder tiny")
    if spec == "tiny":
        return ImageEncoder(TinyImageEncoder(), "tiny", device)
    from roz.models.adapters import create_model

    # one class, one template: the classifier head is not used here, only encode_image
    model = create_model(spec, classes=["n01440764"], templates=["{}"], head_cache=False)
    if not hasattr(model, "encode_image"):
        raise ModelError(f"encoder {spec!r} is not an image-text model (no encode_image)",
                         hint=f"use a CLIP-like spec such as {DEFAULT_ENCODER}, or 'tiny'")
    return ImageEncoder(model, spec, device, input_size=model.preprocess_cfg.input_size)


def check_compatible(test: dict, corpus: dict, where: str = "") -> None:
    """Refuse to compare embeddings of different encoders or dimensions."""
    if int(test.get("dim", -1)) != int(corpus.get("dim", -2)):
        raise RozError(f"embedding dimension mismatch{where}: test side {test.get('dim')}-d ({test.get('encoder')}), "
                       f"corpus {corpus.get('dim')}-d ({corpus.get('encoder')})",
                       hint="embed the test sets with the encoder that made the corpus embeddings (--encoder)")
    a, b = test.get("weights_sha256"), corpus.get("weights_sha256")
    if a and b and a != b:
        raise RozError(f"encoder weights mismatch{where}: {test.get('encoder')!r} has weights sha256 {a[:16]}... on "
                       f"the test side and {b[:16]}... on the corpus side",
                       hint="re-embed the corpus with these weights, or point --encoder at the weights that made it")
    if str(test.get("encoder")) != str(corpus.get("encoder")):
        raise RozError(f"encoder mismatch{where}: test side {test.get('encoder')!r}, corpus {corpus.get('encoder')!r}",
                       hint="pass --encoder with the corpus's encoder (for LAION-400M: openclip:ViT-B-32@openai), or "
                            "re-embed the corpus")
