"""Tiny video files for ImageNet-P fixtures (shared by tests/synthetic and tests/engine)."""

from __future__ import annotations

from pathlib import Path


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
