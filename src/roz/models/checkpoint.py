"""ROZ's local checkpoint format: ``NAME.pt`` + ``NAME.json`` sidecar.

``NAME.pt`` is a plain ``state_dict`` (tensors only, so it loads with
``torch.load(weights_only=True)``; never a pickled module). ``NAME.json`` says how to rebuild
the module and how to feed it::

    {
      "roz_checkpoint": 1,
      "source": "timm" | "torchvision" | "openclip",
      "arch": "resnet18" | "<open_clip model config name>",
      "kwargs": {...},                      # passed to the library's constructor
      "classes": "imagenet-1k" | "roz-mini" | [wnid, ...],   # output / head class set
      "role": "standard" | "zeroshot",
      "preprocess": {"input_size": 224, "resize_size": 256, "interpolation": "bicubic",
                     "mean": [...], "std": [...]},
      "sha256": "<hex of NAME.pt>",
      "tokenizer": {"bpe": "NAME.bpe.txt.gz", "sha256": ..., "vocab_size": ...},  # open_clip: roz.models.bpe
      "extra": {...}                        # provenance: seed, epochs, code version, ...
    }

The sidecar is optional for ``timm:``/``torchvision:``/``openclip:`` specs with an ``@PATH``: when
present it supplies constructor kwargs, classes and preprocessing.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path

import torch

from roz.errors import ModelError
from roz.files import sha256_file  # noqa: F401  (re-exported: checkpoints record it)

CHECKPOINT_FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state_dict: dict, path: str | os.PathLike, meta: dict, half: bool = False) -> Path:
    """Write ``path`` (.pt, a state_dict) and its ``.json`` sidecar atomically; returns the .pt path.

    ``half=True`` stores floating tensors as float16 (loaded back as float32) to keep shipped
    artefacts small.
    """
    path = Path(path).with_suffix(".pt")
    sd = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu().clone())
          for k, v in state_dict.items()}
    import io

    buf = io.BytesIO()
    torch.save(sd, buf)
    atomic_write_bytes(path, buf.getvalue())
    side = {"roz_checkpoint": CHECKPOINT_FORMAT, **meta, "sha256": sha256_file(path)}
    atomic_write_bytes(path.with_suffix(".json"), (json.dumps(side, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_sidecar(path: str | os.PathLike) -> dict | None:
    side = Path(path).with_suffix(".json")
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"checkpoint sidecar {side} is not valid JSON: {e}") from None
    if meta.get("roz_checkpoint", 0) > CHECKPOINT_FORMAT:
        raise ModelError(
            f"checkpoint sidecar {side} has format {meta.get('roz_checkpoint')}, newer than this ROZ understands",
            hint="upgrade roz",
        )
    return meta


def load_state_dict(path: str | os.PathLike, verify: str | None = None) -> dict:
    """Load a state_dict safely (weights_only=True); floats come back as float32.

    ``verify``: expected sha256; a mismatch (partial download, wrong file) is a ModelError.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weight file not found: {path}", hint="check the @PATH part of the model spec")
    if path.stat().st_size == 0:
        raise ModelError(f"weight file is empty: {path}", hint="the download was interrupted; fetch it again")
    if verify is not None and sha256_file(path) != verify:
        raise ModelError(
            f"weight file {path} does not match the sha256 recorded in its sidecar",
            hint="the file is partial or was replaced; re-download or rebuild it",
        )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only=True refused a pickled object (torch suggests unsafe loading)
        raise ModelError(
            f"refused to load {path}: it holds pickled Python objects (e.g. a whole model), not only tensors",
            hint="ROZ never unpickles code from a weight file; save model.state_dict() instead "
                 "(torch.save(model.state_dict(), PATH)) and describe the architecture in the spec or sidecar",
        ) from None
    except Exception as e:  # torch raises many types for truncated/invalid archives
        raise ModelError(
            f"cannot read weight file {path} ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
            hint="the file is truncated or not a PyTorch state_dict; re-download it",
        ) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ModelError(f"weight file {path} holds a {type(sd).__name__}, not a state_dict")
    return {k: (v.float() if torch.is_tensor(v) and v.dtype in (torch.float16, torch.bfloat16) else v)
            for k, v in sd.items()}
