"""Identity of in-memory weights: a content hash of a module's state dict."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over the state dict: every entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
