"""`roz paper`: run a plan in order: prompt searches (CLIP-Auto), the run, overlap, the reports.
Each step is resumable: a prompt artefact that exists is kept, finished units are skipped."""

from __future__ import annotations

import json
from pathlib import Path

from roz.paper.preset import PaperPlan


def run_plan(plan: PaperPlan, *, settings: dict | None = None, device: str = "cpu", log=print) -> dict:
    """Run ``plan``; returns {prompts: [...], units: N, overlap: path|None, reports: [...], missing: [...]}."""
    import roz.api as api
    from roz.report import build_report

    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "paper-plan.json").write_text(json.dumps(
        {"prompt_steps": plan.prompt_steps, "config": plan.config, "overlap": plan.overlap, "reports": plan.reports,
         "missing": plan.missing}, indent=1, default=str))
    for m in plan.missing:
        log(f"MISSING (skipped): {m}")
    for step in plan.prompt_steps:
        if Path(step["out"]).is_file():
            log(f"prompts for {step['name']}: {step['out']} exists (kept)")
            continue
        Path(step["out"]).parent.mkdir(parents=True, exist_ok=True)
        label = step["dataset"]
        api.search_prompts(step["model"], step["method"], plan.loaders.get(label, label), plan.datasets[label],
                           out=step["out"], shots=step["shots"], seed=step["seed"], params=step["params"],
                           device=device, log=log)
    records = api.run(plan.config, out=plan.out, settings=settings, log=log)
    overlap = None
    if plan.overlap:
        api.overlap_detect(plan.out, plan.overlap["tests"], plan.overlap["corpus"], encoder=plan.overlap["encoder"],
                           log=log)
        overlap = str(plan.out / "overlap.json")
    reports = []
    for r in plan.reports:
        reports.append(str(build_report(plan.out, out=plan.out / r.get("out", "report"), baseline=r.get("baseline", "run"),
                                        formats=("png",), **({"n_boot": int(r["bootstrap"])} if "bootstrap" in r else {}))))
    return {"prompts": [s["out"] for s in plan.prompt_steps], "units": len(records), "overlap": overlap,
            "reports": reports, "missing": list(plan.missing)}
