"""The Python API: every CLI command is one function here.

    import roz.api as roz
    rec = roz.evaluate("timm:resnet50", "imagenet-val", "/data/imagenet", out="runs/r50")
    recs = roz.run("run.yaml")
    df = roz.results("runs/r50")
"""

from __future__ import annotations

from pathlib import Path

from roz.engine.plan import load_config, plan_units
from roz.engine.runner import RunOptions, run_units
from roz.engine.store import ResultStore
from roz.engine.units import DatasetRef, ModelRef, Unit, freeze
from roz.errors import RozError
from roz.shifts.registry import parse_shift
from roz.world import register as register_world


def evaluate(model: str, dataset: str, root: str | Path, *, out: str | Path = "runs/eval", name: str | None = None,
             classes: str | None = None, templates: str | None = None, role: str | None = None,
             shift: str | None = None, head: str = "full", seed: int = 0, limit: int | None = None,
             on_bad_image: str = "fail", full_logits: bool = False, dataset_options: dict | None = None,
             force: bool = False, options: RunOptions | None = None, log=None) -> list[dict]:
    """Evaluate one model on one dataset (optionally under a shift); one record per unit."""
    if head not in ("full", "subset"):
        raise RozError(f"head must be 'full' or 'subset', got {head!r}")
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    mref = ModelRef(spec=model, name=name, classes=classes, templates=templates, role=role)
    dref = DatasetRef(name=dataset, root=str(Path(root).expanduser().resolve()), options=freeze(dataset_options))
    units = [Unit(model=mref, dataset=dref, shift=freeze(s), head=head, seed=seed, limit=limit,
                  on_bad_image=on_bad_image, full_logits=full_logits) for s in parse_shift(shift)]
    cfg = {"models": [mref.__dict__], "datasets": [{"name": dataset, "root": dref.root}], "shifts": [shift or "none"]}
    return run_units(units, out, options, force=force, config=cfg, log=log)


def run(config: str | Path | dict, *, out: str | Path | None = None, force: bool = False,
        options: RunOptions | None = None, executor: str | None = None, log=None) -> list[dict]:
    """Run every unit of a config (YAML path or dict); finished units are skipped."""
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    cfg = load_config(config) if not isinstance(config, dict) else dict(config)
    units = plan_units(cfg)
    out = out or cfg.get("out")
    if not out:
        raise RozError("no output directory: set 'out' in the config or pass --out")
    opts = options or RunOptions(batch_size=int(cfg.get("batch_size", 64)), workers=int(cfg.get("workers", 0)),
                                 device=str(cfg.get("device", "cpu")), amp=bool(cfg.get("amp", False)))
    return run_units(units, out, opts, force=force, executor=executor or cfg.get("executor", "local"),
                     config=cfg, log=log)


def results(run_dir: str | Path):
    """The metrics table of a run directory (pandas), in the paper's dataset order."""
    store = ResultStore(run_dir, create=False)
    df = store.metrics_table()
    if df.empty:
        return df
    order = {u["dataset"]["name"]: u["dataset"].get("paper_order", 100) for u in store.units()}
    df["_o"] = df["dataset"].map(order)
    return df.sort_values(["_o", "dataset", "shift", "attack", "model"]).drop(columns="_o").reset_index(drop=True)
