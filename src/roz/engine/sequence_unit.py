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

Progress is checkpointed in parts of ``max(1, opts.part_size // n_frames)`` sequences when a store
is given, like ``run_eval``.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
import torch
from torch.utils.data import DataLoader, Subset

from roz.engine.evaluate import Progress, positions_for
from roz.engine.labelspace import LabelMap
from roz.engine.units import SEQUENCE_DATASETS
from roz.errors import DataError, RozError
from roz.metrics.perturbation import perturbation_scores, top5_from_logits
from roz.shifts.base import sample_seed
from roz.shifts.perturbations import PerturbationSequence, is_noise, n_frames

SEED_SALT = "perturbation"


def is_sequence_unit(unit) -> bool:
    """Units scored by flip probability: a ``perturbation`` shift or a released ImageNet-P dataset."""
    sh = unit.shift_dict() or {}
    return unit.kind == "perturbation"


def _collate_sequences(batch):
    """Sequences may differ in length (released videos): keep a list of ``[T_i, 3, H, W]``."""
    xs, ys, idx, ok = zip(*batch)
    return list(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def _collate_images(batch):
    xs, ys, idx, ok = zip(*batch)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def _loader(ds, positions, batch_size, workers, device, collate) -> DataLoader:
    return DataLoader(Subset(ds, positions), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=str(device).startswith("cuda"), collate_fn=collate,
                      persistent_workers=False, prefetch_factor=2 if workers > 0 else None)


def sequence_protocol(perturbation: str, difficulty: int, source: str, **extra) -> dict:
    return {"perturbation": perturbation, "difficulty": int(difficulty), "n_frames": n_frames(perturbation),
            "source": source,
            "comparison": "first-frame (noise: every frame vs frame 0)" if is_noise(perturbation)
            else f"consecutive frames (stride {int(difficulty)})",
            "flip_prob_unit": "fraction in [0, 1]", "top1_top5": "frame 0, percent", **extra}


def run_sequence_unit(model, ds, label_map: LabelMap, unit, opts, store=None):
    """Evaluate one perturbation-sequence unit; returns ``(rows: pa.Table, metrics, protocol)``.

    ``store`` (optional, a ``ResultStore``): checkpoint finished parts under the unit id and reuse
    them on a re-run.
    """
    sh = dict(unit.shift_dict() or {})
    released = unit.dataset.name in SEQUENCE_DATASETS
    if released and sh:
        raise RozError(f"{unit.dataset.display}: ImageNet-P sequences cannot take a shift ({sh.get('name')})",
                       hint="evaluate imagenet-p clean; use the perturbation: shift on image datasets")
    if released:
        name, difficulty = ds.perturbation, int(ds.difficulty)
        gen = None
        proto = sequence_protocol(name, difficulty, "released videos (imagenet-p)", folder=ds.protocol.get("folder"),
                                  frames="decoded video frames through the model's preprocessing")
    else:
        if sh.get("name") != "perturbation":
            raise RozError(f"run_sequence_unit: unit {unit.unit_id} has no perturbation shift")
        name, difficulty = str(sh["perturbation"]), int(sh.get("difficulty", 1))
        try:
            gen = PerturbationSequence(name, difficulty, quantize=bool(sh.get("quantize", True)))
        except ValueError as e:
            raise RozError(str(e)) from None
        proto = sequence_protocol(name, difficulty, "generated on the fly", seed=unit.seed, seed_salt=SEED_SALT,
                                  quantize=gen.quantize,
                                  frames="perturbation applied to the model's preprocessed crop (zero fill outside)")
    T = n_frames(name)
    device = torch.device(opts.device)
    ds.transform = model.transform()
    lm = label_map.to(device)
    model = model.to(device).eval()
    chunk = max(1, int(opts.batch_size))  # frames per forward pass
    seqs_per_batch = max(1, chunk // T)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16) \
        if opts.amp else contextlib.nullcontext()
    meta_cols = ds.sample_meta()

    positions = positions_for(len(ds), unit.shard, unit.limit)
    part_size = max(1, int(getattr(opts, "part_size", 2048)) // T)
    parts = [positions[i:i + part_size] for i in range(0, len(positions), part_size)]
    done = store.read_parts(unit.unit_id) if store is not None else {}
    todo = [p for p in range(len(parts)) if p not in done]
    results = dict(done)

    def forward_top5(frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> ``[N, k]`` top labels (k = min(5, labels)), chunked."""
        outs = []
        with torch.inference_mode():
            for k in range(0, frames.shape[0], chunk):
                with autocast:
                    logits = lm(model(frames[k:k + chunk].to(device, non_blocking=True)).float())
                outs.append(top5_from_logits(logits)[:, :5].cpu())
        return torch.cat(outs)

    def rows_for(seq_list, y, idx, ok) -> list[dict]:
        lens = [int(s.shape[0]) for s in seq_list]
        top = forward_top5(torch.cat(seq_list)).tolist()
        rows, o = [], 0
        for j, L in enumerate(lens):
            ft = top[o:o + L]
            o += L
            i = int(idx[j])
            valid = ds.valid_labels(i)
            row = {"index": i, "path": ds.samples[i][0], "target": int(y[j]), "ok": bool(ok[j]),
                   "pred": ft[0][0], "correct": ft[0][0] in valid, "correct5": any(t in valid for t in ft[0]),
                   "top5": ft[0], "frame_top5": ft, "n_frames": L}
            for c, vals in meta_cols.items():
                row[c] = vals[i]
            rows.append(row)
        return rows

    with Progress(bool(opts.progress), f"{model.name} · {ds.name} · {name}", len(positions),
                  sum(len(parts[p]) for p in done)) as bar:
        for p in todo:
            rows: list[dict] = []
            if released:
                for xs, y, idx, ok in _loader(ds, parts[p], seqs_per_batch, opts.workers, device, _collate_sequences):
                    rows.extend(rows_for(xs, y, idx, ok))
                    bar.advance(len(idx))
            else:
                for x, y, idx, ok in _loader(ds, parts[p], seqs_per_batch, opts.workers, device, _collate_images):
                    seeds = torch.tensor([sample_seed(unit.seed, int(i), SEED_SALT) for i in idx], dtype=torch.long)
                    seq = gen(x.to(device), seeds)  # [B, T, 3, H, W]
                    rows.extend(rows_for(list(seq.unbind(0)), y, idx, ok))
                    bar.advance(len(idx))
            table = pa.Table.from_pylist(rows)
            results[p] = table
            if store is not None:
                store.write_part(unit.unit_id, p, table)
    tables = [t for _, t in sorted(results.items())]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    if table.num_rows != len(positions):
        raise DataError(f"{unit.unit_id}: expected {len(positions)} rows, stored parts hold {table.num_rows}",
                        hint="re-run with --force to recompute this unit")
    metrics = sequence_metrics(table.to_pandas(), name, difficulty, ds if released else None)
    return table, metrics, proto


def sequence_metrics(df, perturbation: str, difficulty: int = 1, ds=None) -> dict:
    """``flip_prob`` (fraction), ``top5_dist``, ``n``, frame-0 ``top1``/``top5`` (percent), ``n_skipped``."""
    good = df[df["ok"]] if len(df) else df
    if ds is not None and hasattr(ds, "aggregate"):
        m = dict(ds.aggregate(good)) if len(good) else {"flip_prob": float("nan"), "top5_dist": float("nan"), "n": 0}
    else:
        m = perturbation_scores(list(good["frame_top5"]), perturbation, difficulty) if len(good) else \
            {"flip_prob": float("nan"), "top5_dist": float("nan"), "n": 0}
    if len(good):
        m.setdefault("top1", 100.0 * float(good["correct"].mean()))
        m.setdefault("top5", 100.0 * float(good["correct5"].mean()))
    m["n_skipped"] = int(len(df) - len(good))
    return m
