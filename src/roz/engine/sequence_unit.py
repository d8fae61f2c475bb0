"""Perturbation-sequence units (ImageNet-P): one model × one perturbation × a set of sequences.

Two sources of sequences, one per-sample table and one set of metrics:

* **on the fly** -- shift ``{"name": "perturbation", "perturbation": P, "difficulty": d}`` (spec
  ``perturbation:P[:d]``, ``perturbation:all``, ``perturbation:perturbation=P,difficulty=d``) on any
  image dataset: each clean image, after the model's preprocessing (resize + centre crop, pixels in
  [0, 1]), becomes the ``n_frames(P)``-frame sequence of :func:`roz.shifts.perturbations.
  perturbation_sequence`, seeded per sample by ``sample_seed(unit.seed, index, "perturbation")``
  (so a sequence is the same whatever the batch, shard or device);
* **released** -- dataset ``imagenet-p`` (``ROOT/<perturbation>/<wnid>/*.mp4``): the frames of each
  video, each through the model's preprocessing.

Every frame goes through the model and the dataset's label map (chunks of ``opts.batch_size``
frames, ``inference_mode``). Per sample the table keeps ``frame_top5`` (``T`` lists of the top-5
labels, best first), and frame 0's ``pred`` / ``top5`` / ``correct`` / ``correct5``, ``target``,
``index``, ``path``, ``ok``, ``n_frames``.

Metrics (``roz.metrics.perturbation``, the reference's definitions): ``flip_prob`` -- a
**fraction** in [0, 1] (the paper's tables print it in percent; so does ``mfr_table``),
``top5_dist`` (mean top-5 distance), ``n`` (sequences scored), and ``top1`` / ``top5`` of frame 0
in percent (on the fly, frame 0 of the noise perturbations is the clean image, 8-bit quantised
unless ``quantize=false``). Noise
perturbations compare every frame with frame 0, the others consecutive frames (stride
``difficulty``). Unreadable videos (``on_bad_image=skip``) are kept as rows with ``ok=False`` and
left out of the metrics.

Progress is checkpointed in parts of ``max(1, opts.part_size // n_frames)`` sequences through the
shared :class:`roz.engine.parts.PartLedger`, like every kind.
"""

from __future__ import annotations

import torch

from roz.engine.batches import Progress, autocast_for, collate_images, collate_sequences, make_loader
from roz.engine.kinds import UnitContext, UnitResult, dataset_kind, skipped_paths
from roz.errors import RozError
from roz.metrics.perturbation import perturbation_scores, top5_from_logits
from roz.seeding import sample_seed
from roz.shifts.perturbations import PerturbationSequence, is_noise, n_frames

SEED_SALT = "perturbation"


def sequence_protocol(perturbation: str, difficulty: int, source: str, **extra) -> dict:
    return {"perturbation": perturbation, "difficulty": int(difficulty), "n_frames": n_frames(perturbation),
            "source": source,
            "comparison": "first-frame (noise: every frame vs frame 0)" if is_noise(perturbation)
            else f"consecutive frames (stride {int(difficulty)})",
            "flip_prob_unit": "fraction in [0, 1]", "top1_top5": "frame 0, percent", **extra}


def _source(unit, ds):
    """``(perturbation, difficulty, generator or None for released videos, protocol)``."""
    sh = dict(unit.shift_dict() or {})
    released = dataset_kind(unit.dataset.name) == "perturbation"
    if released and sh:
        raise RozError(f"{unit.dataset.display}: ImageNet-P sequences cannot take a shift ({sh.get('name')})",
                       hint="evaluate imagenet-p clean; use the perturbation: shift on image datasets")
    if released:
        proto = sequence_protocol(ds.perturbation, int(ds.difficulty), "released videos (imagenet-p)",
                                  folder=ds.protocol.get("folder"),
                                  frames="decoded video frames through the model's preprocessing")
        return ds.perturbation, int(ds.difficulty), None, proto
    if sh.get("name") != "perturbation":
        raise RozError(f"perturbation unit {unit.unit_id} has no perturbation shift")
    name, difficulty = str(sh["perturbation"]), int(sh.get("difficulty", 1))
    try:
        gen = PerturbationSequence(name, difficulty, quantize=bool(sh.get("quantize", True)))
    except ValueError as e:
        raise RozError(str(e)) from None
    proto = sequence_protocol(name, difficulty, "generated on the fly", seed=unit.seed, seed_salt=SEED_SALT,
                              quantize=gen.quantize,
                              frames="perturbation applied to the model's preprocessed crop (zero fill outside)")
    return name, difficulty, gen, proto


def run(ctx: UnitContext) -> UnitResult:
    """Evaluate one perturbation-sequence unit (released videos or sequences generated on the fly)."""
    unit, ds, opts = ctx.unit, ctx.ds, ctx.opts
    name, difficulty, gen, proto = _source(unit, ds)
    T = n_frames(name)
    scorer = _SequenceScorer(ctx)
    seqs_per_batch = max(1, scorer.chunk // T)
    ledger = ctx.ledger(max(1, int(opts.part_size) // T))
    with Progress(bool(opts.progress), f"{ctx.model.name} · {ds.name} · {name}", len(ctx.positions),
                  ledger.n_reused) as bar:
        for part in ledger.remaining_parts():  # one loader per part: batches never straddle parts
            collate = collate_sequences if gen is None else collate_images
            for xs, y, idx, ok in make_loader(ds, part, seqs_per_batch, opts.workers, scorer.device, collate, prefetch=2):
                if gen is not None:
                    seeds = torch.tensor([sample_seed(unit.seed, int(i), SEED_SALT) for i in idx], dtype=torch.long)
                    xs = list(gen(xs.to(scorer.device), seeds).unbind(0))  # [B, T, 3, H, W] -> B sequences
                ledger.add(scorer.rows(xs, y, idx, ok))
                bar.advance(len(idx))
    table = ledger.finish()
    metrics = sequence_metrics(table.to_pandas(), name, difficulty)
    return UnitResult(table, metrics, protocol={"sequence": proto}, skipped=skipped_paths(table))


class _SequenceScorer:
    """Sequences -> per-sample rows: every frame through the model (chunks of batch_size frames)."""

    def __init__(self, ctx: UnitContext):
        self.ds = ctx.ds
        self.device = torch.device(ctx.opts.device)
        self.ds.transform = ctx.model.transform()
        self.lm = ctx.label_map.to(self.device)
        self.model = ctx.model.to(self.device).eval()
        self.chunk = max(1, int(ctx.opts.batch_size))  # frames per forward pass
        self.autocast = autocast_for(self.device, ctx.opts.amp)
        self.meta_cols = self.ds.sample_meta()

    def top5(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> ``[N, k]`` top labels (k = min(5, labels)), chunked."""
        outs = []
        with torch.inference_mode():
            for k in range(0, frames.shape[0], self.chunk):
                with self.autocast:
                    logits = self.lm(self.model(frames[k:k + self.chunk].to(self.device, non_blocking=True)).float())
                outs.append(top5_from_logits(logits)[:, :5].cpu())
        return torch.cat(outs)

    def rows(self, seq_list, y, idx, ok) -> list[dict]:
        lens = [int(s.shape[0]) for s in seq_list]
        top = self.top5(torch.cat(seq_list)).tolist()
        rows, o = [], 0
        for j, L in enumerate(lens):
            ft = top[o:o + L]
            o += L
            i = int(idx[j])
            valid = self.ds.valid_labels(i)
            row = {"index": i, "path": self.ds.stored_path(i), "target": int(y[j]), "ok": bool(ok[j]),
                   "pred": ft[0][0], "correct": ft[0][0] in valid, "correct5": any(t in valid for t in ft[0]),
                   "top5": ft[0], "frame_top5": ft, "n_frames": L}
            for c, vals in self.meta_cols.items():
                row[c] = vals[i]
            rows.append(row)
        return rows


def sequence_metrics(df, perturbation: str, difficulty: int = 1) -> dict:
    """``flip_prob`` (fraction), ``top5_dist``, ``n``, frame-0 ``top1``/``top5`` (percent), ``n_skipped``:
    the same scores for released videos and generated sequences (``roz.metrics.perturbation``)."""
    good = df[df["ok"]] if len(df) else df
    m = perturbation_scores(list(good["frame_top5"]), perturbation, difficulty) if len(good) else \
        {"flip_prob": float("nan"), "top5_dist": float("nan"), "n": 0}
    if len(good):
        m.setdefault("top1", 100.0 * float(good["correct"].mean()))
        m.setdefault("top5", 100.0 * float(good["correct5"].mean()))
    m["n_skipped"] = int(len(df) - len(good))
    return m
