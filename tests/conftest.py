"""The one conftest: test-wide settings (offline, deterministic, a private ROZ_HOME, few threads on
2 cores with -n 2) and the shared fixtures, which live in ``tests/support`` (importable as
``support`` through pytest's ``pythonpath`` setting in pyproject.toml)."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("ROZ_REAL_HOME", os.environ.get("ROZ_HOME", os.path.expanduser("~/.cache/roz")))
os.environ["ROZ_HOME"] = tempfile.mkdtemp(prefix="roz-test-home-")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

pytest_plugins = [
    "support.fixtures",
    "support.attacks_fixtures",
    "support.overlap_fixtures",
    "support.report_fixtures",
    "support.synthetic_fixtures",
    "support.results_fixtures",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
