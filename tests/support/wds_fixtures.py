"""Fixture data in the input formats of other tools, written by those tools' own libraries.

``write_clip_benchmark_wds`` writes a CLIP_benchmark webdataset collection the way
``clip_benchmark.webdataset_builder.convert_dataset`` does (``webdataset.ShardWriter``, keys
``s%07d``, lossless WebP, ``.cls`` labels, ``classnames.txt``, templates, ``test/nshards.txt``),
from a ROZ fixture tree, so a test can compare both layouts sample by sample.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from roz.datasets.classes import imagenet_1k


def webp_bytes(path: Path) -> bytes:
    """CLIP_benchmark's ``PIL_to_bytes('webp')``: the decoded image re-encoded as lossless WebP."""
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.convert("RGB").save(buf, format="webp", lossless=True)
    return buf.getvalue()


def write_clip_benchmark_wds(out: Path, items, classnames, templates=("a photo of a {c}.",), maxcount: int = 3,
                             ext: str = "webp") -> Path:
    """``items``: ``[(image file, CLIP_benchmark label)]`` in the source dataset's order."""
    import webdataset

    out = Path(out)
    (out / "test").mkdir(parents=True, exist_ok=True)
    (out / "classnames.txt").write_text("\n".join(classnames) + "\n")
    (out / "zeroshot_classification_templates.txt").write_text("\n".join(templates) + "\n")
    sink = webdataset.ShardWriter(str(out / "test" / "%d.tar"), maxcount=maxcount, verbose=0)
    for index, (path, label) in enumerate(items):
        data = webp_bytes(path) if ext == "webp" else Path(path).read_bytes()
        sink.write({"__key__": "s%07d" % index, ext: data, "cls": int(label)})
    n = sink.shard
    sink.close()
    (out / "test" / "nshards.txt").write_text(f"{n}\n")
    return out


def imagenet_names(indices) -> list[str]:
    names = imagenet_1k().names
    return [names[i] for i in indices]


def from_folder_dataset(ds, out: Path, label_of=None, classnames=None, **kw) -> Path:
    """The wds copy of a ROZ folder dataset ``ds``: same images in the same order; ``label_of(path,
    target)`` gives CLIP_benchmark's label (default: the ROZ target)."""
    items = [(ds.root / p, label_of(p, t) if label_of else t) for p, t in ds.samples]
    return write_clip_benchmark_wds(out, items, classnames if classnames is not None else ds.labels.names, **kw)
