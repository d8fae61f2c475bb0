import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "foundation"))
import tinymodels  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def seqfx(tmp_path_factory):
    """An ImageFolder of 4 wnids x 2 random PNGs and two tiny timm checkpoints (32 px input)."""
    root = tmp_path_factory.mktemp("seq")
    data = tinymodels.make_imagefolder(root / "val", n=2, size=(40, 44), ext="png")
    spec_a, _ = tinymodels.timm_checkpoint(root / "a", seed=0)
    spec_b, _ = tinymodels.timm_checkpoint(root / "b", seed=1)
    return {"root": root, "data": data, "model": spec_a, "model_b": spec_b, "wnids": tinymodels.WNIDS}


def write_video(path: Path, frames: list, codec: str = "mpeg4") -> None:
    """A tiny video file (PyAV) from a list of uint8 RGB arrays, as the released ImageNet-P ships."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=1)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
