import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402


@pytest.fixture(scope="session")
def fx(tmp_path_factory):
    """Shared fixtures: an ImageFolder tree and tiny checkpoints of each adapter family."""
    root = tmp_path_factory.mktemp("fx")
    data = tinymodels.make_imagefolder(root / "val", n=6)
    oc_spec, oc_path = tinymodels.openclip_checkpoint(root / "oc")
    tm_spec, tm_path = tinymodels.timm_checkpoint(root / "timm")
    return {"root": root, "data": data, "openclip": oc_spec, "openclip_path": oc_path, "timm": tm_spec,
            "timm_path": tm_path, "wnids": tinymodels.WNIDS}
