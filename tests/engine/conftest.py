import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "foundation"))
import tinymodels  # noqa: E402
from videofixtures import write_video  # noqa: E402,F401  (re-exported for the tests)



@pytest.fixture(scope="session")
def seqfx(tmp_path_factory):
    """An ImageFolder of 4 wnids x 2 random PNGs and two tiny timm checkpoints (32 px input)."""
    root = tmp_path_factory.mktemp("seq")
    data = tinymodels.make_imagefolder(root / "val", n=2, size=(40, 44), ext="png")
    spec_a, _ = tinymodels.timm_checkpoint(root / "a", seed=0)
    spec_b, _ = tinymodels.timm_checkpoint(root / "b", seed=1)
    return {"root": root, "data": data, "model": spec_a, "model_b": spec_b, "wnids": tinymodels.WNIDS}
