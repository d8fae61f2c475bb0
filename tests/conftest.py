"""Test-wide settings: offline, deterministic, a private ROZ_HOME, few threads (2 cores, -n 2)."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("ROZ_REAL_HOME", os.environ.get("ROZ_HOME", os.path.expanduser("~/.cache/roz")))
os.environ["ROZ_HOME"] = tempfile.mkdtemp(prefix="roz-test-home-")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
