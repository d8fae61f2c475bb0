"""Real typographic-attack datasets in their released forms.

Two layouts are read:

* **file names** ``label=<true>_text=<written>.<ext>`` (the PAINT typographic set, Ilharco et al.
  2022; an optional ``_<n>`` / ``-<n>`` counter before the extension is ignored), anywhere under
  ROOT (sub-folders are scanned);
* an **annotation JSON** (``annotations=<file>``, default ``ROOT/annotations.json`` if present): a
  list of ``{"file": ..., "label": ..., "text": ...}`` records (``file``/``path``/``image``/
  ``filename``; ``label``/``true``/``class``; ``text``/``written``/``typo``), or a mapping
  ``{file: {"label": ..., "text": ...}}``; paths are relative to ROOT.

Labels are words, not WordNet IDs. The label space's ids are the lowercase words themselves
(``classes=imagenet-1k`` additionally maps words that equal an ImageNet class name to that
class's wnid, so an ImageNet classifier can be scored on them).

**Candidate-class protocol** (option ``candidates``), recorded in the protocol:

* ``union`` (default): the label space is the vocabulary of the dataset -- every true and every
  written word; every sample is scored over all of it;
* ``full``: the label space is a full class set (``classes=``, e.g. ``imagenet-1k``) plus any
  dataset word outside it;
* ``binary``: the label space is the vocabulary, but each sample is scored over just its two
  candidates {true, written}: ``candidate_mask(indices)`` gives the per-sample boolean mask
  (also the ``candidates`` column of ``sample_meta``) and the engine sets the other logits to
  ``-inf`` (``roz.metrics.typographic.candidate_logits``) before argmax.

Per-sample ``written_label`` (index of the written word) is in ``sample_meta``; ``aggregate``
reports accuracy and attack success rate when the table has a ``pred`` column.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.images import is_image_file
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

PROTOCOLS = ("union", "full", "binary")
_NAME_RE = re.compile(r"^label=(?P<label>.+?)_text=(?P<text>.+?)(?:[_-]\d+)?$")

LAYOUT = ("  ROOT/**/label=<true>_text=<written>.<ext>   e.g. ROOT/label=apple_text=ipod.jpg\n"
          "  or ROOT/<images> + annotations.json: [{\"file\": ..., \"label\": ..., \"text\": ...}, ...]")


def parse_typographic_name(filename: str) -> tuple[str, str] | None:
    """``label=dog_text=cat.jpg`` -> ``("dog", "cat")``; None if the name does not match."""
    m = _NAME_RE.match(Path(filename).stem)
    if not m:
        return None
    return m.group("label"), m.group("text")


def _norm(word: str) -> str:
    return " ".join(str(word).replace("_", " ").split()).lower()


def _first(rec: dict, keys: tuple[str, ...], what: str, where: str):
    for k in keys:
        if k in rec:
            return rec[k]
    raise DataError(f"typographic: annotation record {where} has no {what} (one of {keys})")


def _read_annotations(path: Path) -> list[tuple[str, str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"typographic: cannot read annotation file {path}: {e}") from None
    if isinstance(data, dict) and "annotations" in data and isinstance(data["annotations"], list):
        data = data["annotations"]
    recs = []
    if isinstance(data, dict):
        for f, rec in data.items():
            if not isinstance(rec, dict):
                raise DataError(f"typographic: annotation for {f!r} in {path} is not an object")
            recs.append((str(f), str(_first(rec, ("label", "true", "class"), "label", f)),
                         str(_first(rec, ("text", "written", "typo"), "text", f))))
    elif isinstance(data, list):
        for k, rec in enumerate(data):
            if not isinstance(rec, dict):
                raise DataError(f"typographic: record {k} of {path} is not an object")
            recs.append((str(_first(rec, ("file", "path", "image", "filename"), "file", f"#{k}")),
                         str(_first(rec, ("label", "true", "class"), "label", f"#{k}")),
                         str(_first(rec, ("text", "written", "typo"), "text", f"#{k}"))))
    else:
        raise DataError(f"typographic: annotation file {path} must hold a list of records or a mapping")
    return recs


class TypographicDataset(EvalDataset):
    """Samples with a true and a written word; optional per-sample candidate sets."""

    written: list[int] | None = None
    candidates_protocol: str = "union"

    def sample_meta(self) -> dict[str, list]:
        meta = {"written_label": list(self.written or [])}
        if self.candidates_protocol == "binary":
            meta["candidates"] = [[t, w] for (_, t), w in zip(self.samples, self.written)]
        return meta

    @property
    def has_candidates(self) -> bool:
        return self.candidates_protocol == "binary"

    def candidate_mask(self, indices) -> torch.Tensor:
        """Bool ``[B, n_labels]``: the labels each sample is scored over (all True unless binary)."""
        idx = [int(i) for i in (indices.tolist() if isinstance(indices, torch.Tensor) else indices)]
        m = torch.zeros(len(idx), len(self.labels), dtype=torch.bool)
        if self.candidates_protocol != "binary":
            m[:] = True
            return m
        for r, i in enumerate(idx):
            m[r, self.samples[i][1]] = True
            m[r, self.written[i]] = True
        return m

    # accuracy and attack success rate: the engine scores every table with a written_label column
    # (sample_meta adds it) with roz.metrics.typographic.aggregate_typographic; metrics sit above
    # datasets, so this dataset does not call them itself.

    def metric_names(self) -> list[str]:
        return ["top1", "attack_success_rate"]


def typographic_dataset(root: Path, annotations: str | None = None, candidates: str = "union",
                        classes: str | None = None, name: str = "typographic", on_bad_image: str = "fail"
                        ) -> TypographicDataset:
    root = Path(root)
    if candidates not in PROTOCOLS:
        raise DataError(f"typographic: candidates must be one of {PROTOCOLS}, got {candidates!r}")
    if candidates == "full" and classes is None:
        raise DataError("typographic: candidates=full needs classes=<class set> (e.g. imagenet-1k)")
    ann = Path(annotations) if annotations else (root / "annotations.json")
    if annotations and not ann.is_absolute() and not ann.is_file():
        ann = root / annotations
    if annotations and not ann.is_file():
        raise DataError(f"typographic: annotation file {ann} not found")
    if ann.is_file():
        recs = _read_annotations(ann)
        source = f"annotations:{ann.name}"
        for f, _, _ in recs:
            if not (root / f).is_file():
                raise DataError(f"typographic: annotated image {root / f} does not exist")
    else:
        recs, unmatched = [], []
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if f.startswith(".") or not is_image_file(f):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                p = parse_typographic_name(f)
                if p is None:
                    unmatched.append(rel)
                else:
                    recs.append((rel, *p))
        if unmatched:
            raise DataError(f"typographic: {len(unmatched)} images under {root} are not named "
                            f"label=<true>_text=<written>.<ext>, e.g. {unmatched[:3]}",
                            hint="rename them, or describe them in an annotations.json")
        source = "file names"
    if not recs:
        raise DataError(f"typographic: no images found under {root}")
    recs = sorted(recs)
    words = sorted({_norm(w) for _, a, b in recs for w in (a, b)})

    # label space: ids are words (or ImageNet wnids for words that are ImageNet class names)
    cs = None
    if classes is not None:
        from roz.datasets.classes import get_class_set

        cs = get_class_set(classes)
    by_name = {}
    if cs is not None:
        for w_id, nm in zip(cs.wnids, cs.names):
            by_name.setdefault(_norm(nm), w_id)
    if candidates == "full":
        names = [str(n) for n in cs.names] + [w for w in words if w not in by_name]
        ids = list(cs.wnids) + [w for w in words if w not in by_name]
        index = {_norm(n): i for i, n in reversed(list(enumerate(names)))}
    else:
        names = list(words)
        ids = [by_name.get(w, w) for w in words]
        index = {w: i for i, w in enumerate(words)}
    if len(set(ids)) != len(ids):  # two words mapped to the same wnid: keep words as ids
        ids = [f"{i}:{n}" for i, n in zip(ids, names)]
    samples = [(f, index[_norm(a)]) for f, a, _ in recs]
    written = [index[_norm(b)] for _, _, b in recs]
    ds = TypographicDataset(
        name=name, root=root, samples=samples, labels=LabelSpace([(i,) for i in ids], names),
        protocol={"candidates": candidates, "source": source, "n_words": len(words),
                  "class_set": classes or "dataset words",
                  "candidate_rule": {"union": "all true and written words of the dataset",
                                     "full": f"the full class set {classes} plus dataset words",
                                     "binary": "per sample: {true word, written word}"}[candidates]},
        on_bad_image=on_bad_image,
    )
    ds.written, ds.candidates_protocol = written, candidates
    return ds


def _typographic(root: Path, **opts) -> TypographicDataset:
    return typographic_dataset(root, **opts)


INFOS.append(DatasetInfo(
    name="typographic",
    factory=_typographic,
    description="real typographic-attack photos (label=X_text=Y.* names or annotations.json); "
                "options candidates=union|full|binary, classes",
    layout=LAYOUT,
    source="PAINT typographic set (github.com/mlfoundations/patching); Materzynska et al. 2022; RTA-100",
    metrics=("top1", "attack_success_rate"),
    paper_order=600,
    tags=("typographic",),
))
