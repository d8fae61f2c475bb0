"""Perturbations (ImageNet-P): flip probability and top-5 distance per model
(:func:`roz.metrics.perturbation.mfr_table`)."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section, notes_html

ABSENT = "run perturbation:... shifts or the imagenet-p dataset"


def perturbation_data(rows, baseline_model: str | None = None) -> dict | None:
    """ImageNet-P units (kind ``perturbation`` with a ``flip_prob``; ``rows``: the report context's
    ``perturbations`` table) -> the per-model FP / mFR / T5D / mT5D table (FP and mFR in percent),
    or None when the run has none.

    Difficulty 1 when the run has it, else every difficulty averaged per perturbation.
    ``baseline_model`` (the report's ``ce_baseline``): adds the normalised ``mFR_norm`` /
    ``mT5D_norm`` (baseline = 100) when that model has perturbation results, else the table stays
    un-normalised and ``baseline_missing`` says so."""
    from roz.metrics.perturbation import mfr_table

    rows = rows[rows["kind"] == "perturbation"]
    if not len(rows):
        return None
    named = rows[rows["perturbation"].notna()]
    difficulties = sorted({int(d) for d in named["difficulty"]})
    if not difficulties:
        return None
    difficulty = 1 if 1 in difficulties else None
    models = set(named["model"] if difficulty is None else named.loc[named["difficulty"] == difficulty, "model"])
    base = baseline_model if baseline_model is not None and baseline_model in models else None
    df = mfr_table(rows, baseline_model=base, difficulty=difficulty)
    if not len(df):
        return None
    roles = dict(zip(rows["model"], rows["role"]))
    df.insert(1, "role", [roles.get(m, "") for m in df.model])
    return {"table": df, "baseline_model": base,
            "baseline_missing": baseline_model if baseline_model is not None and base is None else None,
            "perturbations": list(df.attrs.get("perturbations", [])), "difficulty": difficulty,
            "difficulties": difficulties, "datasets": sorted(set(rows["dataset"]))}


class Perturbations(Section):
    sid = "perturbations"
    title = "Perturbations (ImageNet-P)"

    def collect(self, ctx):
        return perturbation_data(ctx.perturbations, ctx.options.ce_baseline)

    def write(self, pert, ctx, files):
        files.table("perturbations", pert["table"])

    def render(self, pert, ctx, files):
        return "\n".join([perturbation_notes(pert), html.table_html(pert["table"]),
                          f"<p>Download: {files.links('perturbations')}</p>"])

    def absent(self, ctx):
        return html.absent(ABSENT)

    def to_json(self, pert, ctx):
        return {"perturbations": pert["table"].to_dict(orient="records") if pert else []}


def perturbation_notes(pert: dict) -> str:
    from roz.shifts.perturbations import NOISE_PERTURBATIONS, PERTURBATIONS

    d = pert["difficulty"]
    parts = [("Stability under ImageNet-P perturbation sequences (Hendrycks & Dietterich 2019). FP/<p>: flip "
             "probability, the fraction (%) of compared frame pairs whose top-1 prediction changes; T5D/<p>: mean "
             "top-5 distance between the rankings of the compared frames (not a percentage). Comparison rule: noise "
             f"perturbations ({', '.join(NOISE_PERTURBATIONS)}) compare every frame with frame 0 (i.i.d. draws, not a "
             "temporal ramp); the others compare consecutive frames (at stride = difficulty)."),
             ("Difficulty 1." if d == 1 else
              f"Difficulties {', '.join(map(str, pert['difficulties']))} averaged per perturbation (no difficulty-1 "
              "units in this run).")
             + f" Data: {', '.join(pert['datasets'])}; several units of one (model, perturbation) are weighted by "
             "their sample counts."]
    b = pert["baseline_model"]
    if b is not None:
        parts.append(f"mFR / mT5D: the un-normalised means over perturbations; mFR_norm / mT5D_norm: normalised by "
                     f"{b} (the ce_baseline model), the mean over perturbations of FP_model(p) / FP_{b}(p) (× 100, "
                     f"so {b} scores 100; lower is more stable).")
    else:
        parts.append("mFR (%) and mT5D are un-normalised: means over the perturbations of FP and T5D, not the "
                     "paper's AlexNet-normalised mFR. Pass ce_baseline=MODEL to build_report to also normalise by a "
                     "model of this run."
                     + (f" The ce_baseline model {pert['baseline_missing']} has no perturbation units, so no "
                        "normalisation." if pert["baseline_missing"] else ""))
    missing = [p for p in PERTURBATIONS if p not in pert["perturbations"]]
    if missing:
        parts.append(f"This run: {len(pert['perturbations'])} perturbation(s) ({', '.join(pert['perturbations'])}) — "
                     f"not the 10 ImageNet-P test perturbations, so not comparable with published mFR values. "
                     "A model without every perturbation has no mFR (–).")
    return notes_html(parts)
