"""The ``eval`` unit kind: batched evaluation of model × dataset (× image shift).

Per-sample rows go to the store (Parquet) with the dataset's extra columns, so any subset can be
re-scored later; aggregate metrics come from the dataset's own ``aggregate`` (top-1/top-5, pm-k,
...). Progress is checkpointed every ``part_size`` samples through the shared
:class:`roz.engine.parts.PartLedger`: an interrupted unit resumes from its finished parts and
ends with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import torch

from roz.engine.batches import Progress, autocast_for, make_loader
from roz.engine.kinds import UnitContext, UnitResult, skipped_paths
from roz.seeding import sample_seed

DEFAULT_PART_SIZE = 2048


def run(ctx: UnitContext) -> UnitResult:
    from roz.shifts.registry import create_shift

    unit, ds, opts = ctx.unit, ctx.ds, ctx.opts
    shift = create_shift(unit.shift_dict() or {}, dataset=ds)
    ledger = ctx.ledger(opts.part_size)
    scorer = _Scorer(ctx, shift)
    with Progress(opts.progress, f"{ctx.model.name} · {ds.name}", len(ctx.positions), ledger.n_reused) as bar:
        if ledger.remaining:
            for x, y, idx, ok in make_loader(ds, ledger.remaining, opts.batch_size, opts.workers, scorer.device):
                ledger.add(scorer.rows(x, y, idx, ok))
                bar.advance(len(idx))
    table = ledger.finish()
    df = table.to_pandas()
    metrics = ds.aggregate(df[df["ok"]]) if len(df) else ds.aggregate(df)
    if getattr(shift, "probe", None) == "reading":  # word cards: reading accuracy (no attack, no success rate)
        from roz.metrics.reading import aggregate_reading

        metrics.update(aggregate_reading(df, names=list(ds.labels.names)))
    elif "written_label" in df.columns:  # typographic shift or dataset: accuracy + attack success rate
        from roz.metrics.typographic import aggregate_typographic

        metrics.update(aggregate_typographic(df))
    skipped = skipped_paths(table)
    metrics["n_skipped"] = len(skipped)
    return UnitResult(table, metrics, skipped=skipped, shift_params=shift.params() if shift is not None else None)


class _Scorer:
    """One batch -> its per-sample rows (shift, forward, label map, top-5)."""

    def __init__(self, ctx: UnitContext, shift):
        self.ds, self.unit, self.shift = ctx.ds, ctx.unit, shift
        self.device = torch.device(ctx.opts.device)
        self.ds.transform = ctx.model.transform()
        self.lm = ctx.label_map.to(self.device)
        self.model = ctx.model.to(self.device).eval()
        self.meta_cols = self.ds.sample_meta()
        self.salt = getattr(shift, "name", "")
        self.needs_targets = bool(getattr(shift, "needs_targets", False))
        self.candidates = bool(getattr(self.ds, "has_candidates", False))  # per-sample candidates (binary protocol)
        self.autocast = autocast_for(self.device, ctx.opts.amp)

    def logits(self, x, y, idx, ok):
        x = x.to(self.device, non_blocking=True)
        written = None
        if self.shift is not None:
            seeds = torch.tensor([sample_seed(self.unit.seed, int(i), self.salt) for i in idx], dtype=torch.long)
            if self.needs_targets:
                x, written, sok = self.shift.apply_with_labels(x, seeds, y)
                ok = ok & sok.cpu()
            else:
                x = self.shift(x, seeds)
        with torch.inference_mode(), self.autocast:
            logits = self.lm(self.model(x).float())
        if self.candidates:
            from roz.metrics.typographic import candidate_logits

            logits = candidate_logits(logits, self.ds.candidate_mask(idx).to(logits.device))
        return logits, written, ok

    def rows(self, x, y, idx, ok) -> list[dict]:
        logits, written, ok = self.logits(x, y, idx, ok)
        k = min(5, logits.shape[1])
        top_v, top_i = logits.topk(k, dim=1)
        top_i, top_v = top_i.cpu().tolist(), top_v.float().cpu().tolist()
        full = logits.float().cpu().tolist() if self.unit.full_logits else None
        out = []
        for j in range(len(idx)):
            i = int(idx[j])
            valid = self.ds.valid_labels(i)
            row = {"index": i, "path": self.ds.stored_path(i), "target": int(y[j]), "ok": bool(ok[j]),
                   "pred": top_i[j][0], "correct": top_i[j][0] in valid,
                   "correct5": any(t in valid for t in top_i[j]), "top5": top_i[j], "top5_logits": top_v[j]}
            for c, vals in self.meta_cols.items():
                row[c] = vals[i]
            if written is not None:
                row["written_label"] = int(written[j])
            if full is not None:
                row["logits"] = full[j]
            out.append(row)
        return out
