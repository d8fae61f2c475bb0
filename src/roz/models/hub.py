"""Hub downloads that fail fast offline.

Library downloaders (huggingface_hub, open_clip, torch.hub) retry for minutes when the network is
down. ROZ checks the local cache first and, on a miss, probes the host once with a short timeout,
so an offline machine gets a one-line actionable error instead of a hang.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from roz.errors import ModelError

PROBE_TIMEOUT_S = 3.0


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get("ROZ_OFFLINE") == "1"


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_download(what: str, host: str, cached: bool, local_hint: str) -> None:
    """Raise a ModelError unless ``cached`` or ``host`` can be reached right now."""
    if cached:
        return
    if offline_mode() or not host_reachable(host):
        reason = "offline mode is on (HF_HUB_OFFLINE/ROZ_OFFLINE)" if offline_mode() else f"{host} is unreachable"
        raise ModelError(f"weights for {what} are not in the local cache and {reason}", hint=local_hint)


def hf_cached(repo_id: str, filenames=("open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                                        "model.safetensors", "pytorch_model.bin")) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    for f in filenames:
        p = try_to_load_from_cache(repo_id, f)
        if isinstance(p, str) and Path(p).is_file():
            return True
    return False


def url_cached(url: str, cache: Path) -> bool:
    return (Path(cache) / os.path.basename(url.split("?")[0])).is_file()
