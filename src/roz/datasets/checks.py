"""Integrity check of a dataset copy: ``roz datasets check NAME ROOT``.

Loads the dataset exactly as an evaluation would (so layout and metadata errors surface with the
expected layout and the download source), then compares what is there with the published counts
(``DatasetInfo.expected_counts``, or an ``expected`` dict given by the caller):

* ``total``: number of images (an int, or a list of accepted totals, e.g. ImageNet-Sketch);
* ``per_class``: images per class, for datasets published with a uniform count (ImageNet val 50,
  ImageNetV2 10); every class of the label space must have exactly that many;
* ``n_classes``: number of classes that must have at least one image;
* ``classes``: ``"timm:r"`` / ``"timm:a"``: the class folders must be the published 200 wnids;
* ``anchors``: number of anchors (video datasets; every frame listed by the metadata must exist,
  which loading already verifies);
* ``anchors_listed``: YTBB-Robust: rows of the anchor list ``ytbb_robustness_test_anchors_full.csv``.

A copy that fails any of these is reported as not OK (exit status 1 in the CLI).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roz.datasets.registry import create_dataset, dataset_info
from roz.errors import DataError


@dataclass
class CheckResult:
    name: str
    root: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)

    def report(self) -> str:
        head = f"{self.name} at {self.root}: {'OK' if self.ok else 'FAILED'}"
        return "\n".join([head, *("  " + line for line in self.lines)])

    def render(self):
        """The report as a rich ``Text`` (no markup parsing of paths / wnid lists)."""
        from rich.text import Text

        return Text(self.report(), style=None if self.ok else "red")

    def __str__(self) -> str:
        return self.report()

    def to_dict(self) -> dict:
        return {"name": self.name, "root": self.root, "ok": self.ok, "lines": list(self.lines),
                "counts": dict(self.counts), "protocol": dict(self.protocol)}


def _fmt(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _check_video(ds, exp: dict, res: CheckResult, fails: list[str]) -> None:
    """Anchor / frame counts of a video dataset (pm-k pairs) against the published ones."""
    n = len(ds)
    n_anchors = len(set(ds.anchors))
    res.counts.update({"pairs": n, "anchors": n_anchors, "frames": len(set(ds.frames))})
    derived = "derived" in str(ds.protocol.get("pmsets", ""))
    res.lines.append(f"{_fmt(n_anchors)} anchors, {_fmt(len(set(ds.frames)))} frames "
                     f"({_fmt(n)} anchor-frame pairs); "
                     + ("every anchor frame is present (pm-sets derived from the frame files)" if derived
                        else "every frame listed by the metadata is present"))
    if "anchors" in exp and n_anchors != exp["anchors"]:
        fails.append(f"found {_fmt(n_anchors)} anchors, the published dataset has {_fmt(exp['anchors'])}")
    if "anchors_listed" in exp:
        csv_p = Path(ds.root) / "metadata" / "ytbb_robustness_test_anchors_full.csv"
        if csv_p.is_file():
            with open(csv_p, newline="") as f:
                listed = sum(1 for _ in csv.DictReader(f))
            res.counts["anchors_listed"] = listed
            if listed != exp["anchors_listed"]:
                fails.append(f"the anchor list has {_fmt(listed)} anchors, the published one "
                             f"{_fmt(exp['anchors_listed'])}")
    if derived:
        per = Counter(ds.anchors)
        short = sum(1 for a, c in per.items() if c < 2 * 10 + 1)
        if short:
            res.lines.append(f"warning: {short} anchors have fewer than 20 neighbour frames on disk "
                             "(video start/end, or missing frames)")


def _check_images(ds, exp: dict, res: CheckResult, fails: list[str]) -> None:
    """Image / class counts of an image dataset against the published ones."""
    n = len(ds)
    per_label = Counter(t for _, t in ds.samples)
    by_wnid = all(len(g) == 1 for g in ds.labels.groups) and "objectnet" not in ds.name
    names = [g[0] if by_wnid else ds.labels.names[i] for i, g in enumerate(ds.labels.groups)]
    counts = {names[i]: per_label.get(i, 0) for i in range(len(ds.labels))}
    res.counts.update({"total": n, "per_class": counts, "classes_with_images": sum(1 for c in counts.values() if c)})
    res.lines.append(f"{_fmt(n)} images in {res.counts['classes_with_images']} of {len(counts)} classes")
    if "total" in exp:
        totals = exp["total"] if isinstance(exp["total"], (list, tuple)) else [exp["total"]]
        if n not in totals:
            fails.append(f"found {_fmt(n)} images, the published dataset has "
                         f"{' or '.join(_fmt(t) for t in totals)}")
    if "n_classes" in exp and res.counts["classes_with_images"] != exp["n_classes"]:
        empty = [k for k, c in counts.items() if c == 0]
        fails.append(f"{res.counts['classes_with_images']} classes have images, the published dataset has "
                     f"{exp['n_classes']}" + (f" (empty: {empty[:10]})" if empty else ""))
    if "per_class" in exp:
        want = exp["per_class"]
        bad = {k: c for k, c in counts.items() if c != (want if isinstance(want, int) else want.get(k, c))}
        if bad:
            show = ", ".join(f"{k}: {c}" for k, c in list(bad.items())[:20])
            fails.append(f"{len(bad)} classes do not have the published count "
                         f"({want if isinstance(want, int) else 'per class'}): {show}"
                         + (" ..." if len(bad) > 20 else ""))
    if isinstance(exp.get("classes"), str) and exp["classes"].startswith("timm:"):
        from roz.datasets.imagenet import timm_synsets

        pub = set(timm_synsets(exp["classes"].split(":", 1)[1]))
        have = {g[0] for g in ds.labels.groups}
        if have != pub:
            fails.append(f"class folders differ from the published {len(pub)}: "
                         f"{len(pub - have)} missing (e.g. {sorted(pub - have)[:5]}), "
                         f"{len(have - pub)} unexpected (e.g. {sorted(have - pub)[:5]})")


def check_dataset(name: str, root: str | Path, expected: dict | None = None, **options) -> CheckResult:
    """Check the copy of dataset ``name`` at ``root``; ``expected`` overrides the published counts
    (``{}`` checks only that it loads). Never raises for a bad copy: returns ``ok=False``."""
    info = dataset_info(name)  # unknown names do raise
    exp = dict(info.expected_counts or {}) if expected is None else dict(expected)
    res = CheckResult(name=name, root=str(root), ok=True)
    if isinstance((info.expected_counts or {}).get("classes"), str):
        # the class set is compared below; load a partial copy so its counts can be reported
        options.setdefault("allow_partial", True)
    try:
        ds = create_dataset(name, root, **options)
    except DataError as e:
        res.ok = False
        res.lines += str(e).splitlines()
        return res
    res.protocol = dict(ds.protocol)
    fails: list[str] = []
    if hasattr(ds, "anchors"):
        _check_video(ds, exp, res, fails)
    else:
        _check_images(ds, exp, res, fails)
    if "version" in ds.protocol:
        res.lines.append(f"version: {ds.protocol['version']}")
    if fails:
        res.ok = False
        res.lines += [f"MISMATCH: {f}" for f in fails]
        res.lines.append("a partial or modified copy? re-download it"
                         + (f" from {info.source}" if info.source else ""))
    return res
