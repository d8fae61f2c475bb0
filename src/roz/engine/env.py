"""The environment recorded with every result (library versions, device, threads)."""

from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib import metadata


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("roz", "torch", "torchvision", "open_clip_torch", "timm", "transformers", "numpy", "pillow", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def environment(device) -> dict:
    import torch

    env = dict(library_versions())
    env["device"] = str(device)
    env["torch_threads"] = torch.get_num_threads()
    if str(device).startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env
