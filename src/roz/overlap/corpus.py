"""Pretraining-corpus readers, each reading the format the way the ecosystem writes it.

Image corpora (iterate ``records()`` -> ``(key, source, caption)``; ``load(source)`` decodes):

* :class:`FolderCorpus` — every image file under a folder (key: the relative path);
* :class:`PathListCorpus` — a Parquet or CSV file with a ``path`` (or ``filepath``/``image_path``)
  column, relative paths resolved against the file's folder; optional ``key`` and ``caption`` columns;
* :class:`WebDatasetCorpus` — img2dataset / webdataset ``.tar`` shards (``KEY.jpg`` + ``KEY.txt`` +
  ``KEY.json``), read with the ``webdataset`` library (shards in order, no shuffling, undecoded
  bytes so that skipping a finished shard costs no decoding).

Every image source is decoded the same way (``decode``: the file's bytes, PIL, RGB), so a folder, a
path list and tar shards holding the same files give the same pixels and embeddings.

:class:`EmbeddingCorpus` — precomputed embeddings in the layout of LAION's released CLIP embeddings
(``img_emb/img_emb_0000.npy`` float16 ``[rows, dim]`` + ``metadata/metadata_0000.parquet`` with the
same rows, read by the numeric suffix), as ``clip-retrieval inference`` and
:func:`roz.overlap.shards.embed_corpus` write it. The encoder comes from ROZ's sidecar
``roz_embeddings.json`` when present, else must be named by the caller (LAION's release does not
record it: LAION-400M's are ``openclip:ViT-B-32@openai``); search refuses a corpus whose encoder or
dimension differs from the test side's.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

from roz.errors import DataError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp")
SIDECAR = "roz_embeddings.json"
EMBEDDINGS_FORMAT = "roz-embeddings/1"
PATH_COLUMNS = ("path", "filepath", "image_path")


def decode(source) -> "Image.Image":  # noqa: F821
    """Bytes or a path -> RGB PIL image; ``DataError`` when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as e:
        raise DataError(f"cannot decode image {source if not isinstance(source, (bytes, bytearray)) else '<bytes>'}: {e}")


def _fingerprint(files) -> str:
    """Hash of the files' names, sizes and modification times: cheap at hundreds of GB (a content
    hash would read everything), changes whenever a file is rewritten."""
    h = hashlib.sha256()
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class FolderCorpus:
    kind = "folder"

    def __init__(self, root):
        from roz.overlap.detect import list_images

        self.root = Path(root)
        self.paths = list_images(self.root)

    def __len__(self):
        return len(self.paths)

    def records(self):
        for p in self.paths:
            yield str(p.relative_to(self.root)), p, ""

    def load(self, source):
        return decode(source)

    def fingerprint(self) -> str:
        return _fingerprint(self.paths)

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.root), "n": len(self)}


class PathListCorpus(FolderCorpus):
    kind = "path-list"

    def __init__(self, file, column: str | None = None):
        import pandas as pd

        self.file = Path(file)
        try:
            df = pd.read_parquet(self.file) if self.file.suffix == ".parquet" else pd.read_csv(self.file)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the corpus path list {self.file}: {e}") from None
        col = column or next((c for c in PATH_COLUMNS if c in df.columns), None)
        if col is None or col not in df.columns:
            raise DataError(f"{self.file} has no path column (looked for {column or ', '.join(PATH_COLUMNS)}); "
                            f"columns: {list(df.columns)[:10]}", hint="name the image path column 'path'")
        base = self.file.parent
        self.paths = [Path(p) if Path(p).is_absolute() else base / p for p in df[col].astype(str)]
        self.keys = df["key"].astype(str).tolist() if "key" in df.columns else [str(p) for p in df[col]]
        self.captions = df["caption"].fillna("").astype(str).tolist() if "caption" in df.columns else [""] * len(df)
        self.root = base

    def records(self):
        yield from zip(self.keys, self.paths, self.captions)

    def fingerprint(self) -> str:
        return _fingerprint([self.file]) + _fingerprint(p for p in self.paths if p.exists())

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.file), "n": len(self)}


def _tar_urls(path) -> list[str]:
    p = Path(path)
    if p.is_dir():
        urls = sorted(str(t) for t in p.glob("*.tar"))
    elif p.suffix == ".tar" and p.is_file():
        urls = [str(p)]
    else:
        import braceexpand

        urls = [u for u in braceexpand.braceexpand(str(path)) if Path(u).is_file()]
    if not urls:
        raise DataError(f"no webdataset .tar shards at {path}", hint="give a .tar, a folder of .tar or a brace pattern "
                        "such as shards/{00000..00009}.tar")
    return urls


class WebDatasetCorpus:
    kind = "webdataset"

    def __init__(self, path):
        self.path = str(path)
        self.urls = _tar_urls(path)

    def __len__(self):  # unknown without reading every shard
        raise TypeError("a webdataset corpus has no length before it is read")

    def records(self):
        import webdataset

        ds = webdataset.WebDataset(self.urls, shardshuffle=False, empty_check=False)
        for sample in ds:
            ext = next((e for e in IMAGE_EXTS if e in sample), None)
            if ext is None:
                continue  # a sample without an image (img2dataset writes only successes, but be lenient)
            txt = sample.get("txt", b"")
            caption = txt.decode("utf-8", "replace") if isinstance(txt, bytes) else str(txt)
            yield str(sample["__key__"]), bytes(sample[ext]), caption

    def load(self, source):
        return decode(source)

    def fingerprint(self) -> str:
        return _fingerprint(self.urls)

    def describe(self) -> dict:
        return {"kind": self.kind, "path": self.path, "n_shards": len(self.urls)}


class EmbeddingCorpus:
    """Precomputed embeddings (LAION layout), memory-mapped; the ``search.VectorIndex`` corpus protocol."""

    kind = "embeddings"

    def __init__(self, root, encoder: str | None = None):
        self.root = Path(root)
        emb = {int(m.group(1)): f for f in (self.root / "img_emb").glob("img_emb_*.npy")
               if (m := re.fullmatch(r"img_emb_(\d+)\.npy", f.name))}
        meta = {int(m.group(1)): f for f in (self.root / "metadata").glob("metadata_*.parquet")
                if (m := re.fullmatch(r"metadata_(\d+)\.parquet", f.name))}
        if not emb:
            raise DataError(f"no embedding shards img_emb/img_emb_NNNN.npy under {self.root}",
                            hint="LAION layout: img_emb/img_emb_0000.npy + metadata/metadata_0000.parquet")
        if set(emb) != set(meta):
            raise DataError(f"embedding shards and metadata do not pair up under {self.root}: "
                            f"npy only {sorted(set(emb) - set(meta))[:5]}, parquet only {sorted(set(meta) - set(emb))[:5]}",
                            hint="an interrupted copy or embedding job; finish it (roz resumes) or remove the strays")
        self.shard_ids = sorted(emb)
        self.emb_files = [emb[k] for k in self.shard_ids]
        self.meta_files = [meta[k] for k in self.shard_ids]
        self._arrays = [np.load(f, mmap_mode="r") for f in self.emb_files]
        dims = {a.shape[1] if a.ndim == 2 else None for a in self._arrays}
        if len(dims) != 1 or None in dims:
            raise DataError(f"embedding shards under {self.root} have different or invalid shapes: {sorted(map(str, dims))}")
        self.dim = dims.pop()
        rows = np.array([len(a) for a in self._arrays], np.int64)
        self.offsets = np.r_[0, np.cumsum(rows)]
        self.n = int(self.offsets[-1])
        side = self.root / SIDECAR
        self.sidecar = json.loads(side.read_text()) if side.is_file() else {}
        recorded = self.sidecar.get("encoder")
        if encoder and recorded and encoder != recorded:
            raise DataError(f"corpus embeddings under {self.root} were made with {recorded!r}, not {encoder!r}",
                            hint="drop --corpus-encoder or correct it")
        self.encoder = recorded or encoder
        if self.sidecar.get("dim") not in (None, self.dim):
            raise DataError(f"{side} says dim {self.sidecar.get('dim')}, the shards hold {self.dim}-d vectors")
        self._keys: dict[int, list[str]] = {}

    def iter_shards(self):
        for off, a in zip(self.offsets[:-1], self._arrays):
            yield int(off), a

    def take(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.dim), np.float16)
        shard = np.searchsorted(self.offsets, ids, side="right") - 1
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self._arrays[s][ids[sel] - self.offsets[s]]
        return out

    def metadata(self, ids) -> list[dict]:
        """``{"key", "caption", "image_path"}`` of corpus rows (from the metadata Parquet; "" where absent)."""
        import pyarrow.parquet as pq

        out = []
        for i in np.asarray(ids, dtype=np.int64):
            s = int(np.searchsorted(self.offsets, i, side="right") - 1)
            if s not in self._keys:
                t = pq.read_table(self.meta_files[s])
                col = next((c for c in ("key", "image_path", "url") if c in t.column_names), None)
                keys = [str(k) for k in t.column(col).to_pylist()] if col else [f"{s}:{j}" for j in range(t.num_rows)]
                caps = [str(c or "") for c in t.column("caption").to_pylist()] if "caption" in t.column_names else [""] * len(keys)
                paths = [str(c or "") for c in t.column("image_path").to_pylist()] if "image_path" in t.column_names \
                    else [""] * len(keys)
                self._keys[s] = list(zip(keys, caps, paths))
            key, cap, path = self._keys[s][int(i - self.offsets[s])]
            out.append({"key": key, "caption": cap, "image_path": path})
        return out

    def fingerprint(self) -> str:
        return _fingerprint(self.emb_files + self.meta_files)

    def info(self) -> dict:
        return {"encoder": self.encoder, "weights_sha256": self.sidecar.get("weights_sha256"), "dim": self.dim}

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.root), "n": self.n, "dim": self.dim, "encoder": self.encoder,
                "n_shards": len(self.emb_files), "encoder_source": "sidecar" if self.sidecar.get("encoder") else "given"}


def open_corpus(path, *, kind: str = "auto", encoder: str | None = None, column: str | None = None):
    """A corpus reader for ``path`` (``kind``: auto, folder, list, webdataset, embeddings)."""
    p = Path(path)
    if kind == "auto":
        if p.is_dir() and (p / "img_emb").is_dir():
            kind = "embeddings"
        elif p.suffix in (".parquet", ".csv") and p.is_file():
            kind = "list"
        elif (p.is_dir() and any(p.glob("*.tar"))) or p.suffix == ".tar" or "{" in str(path):
            kind = "webdataset"
        elif p.is_dir():
            kind = "folder"
        else:
            raise DataError(f"corpus {path} does not exist or is not a recognised format",
                            hint="an image folder, a .parquet/.csv list of paths, .tar shards, or a folder with "
                                 "img_emb/ + metadata/ (precomputed embeddings)")
    readers = {"folder": lambda: FolderCorpus(p), "list": lambda: PathListCorpus(p, column),
               "webdataset": lambda: WebDatasetCorpus(path), "embeddings": lambda: EmbeddingCorpus(p, encoder)}
    if kind not in readers:
        raise DataError(f"unknown corpus kind {kind!r}", hint=f"one of auto, {', '.join(readers)}")
    return readers[kind]()


def write_sidecar(root, obj: dict) -> None:
    from roz.engine.store import atomic_write_json

    atomic_write_json(Path(root) / SIDECAR, {"format": EMBEDDINGS_FORMAT, **obj})


def shard_paths(root, k: int) -> tuple[Path, Path]:
    root = Path(root)
    return root / "img_emb" / f"img_emb_{k:04d}.npy", root / "metadata" / f"metadata_{k:04d}.parquet"


def remove_partial(path: Path) -> None:
    for t in path.parent.glob(f".{path.name}.*.tmp"):
        t.unlink(missing_ok=True)
