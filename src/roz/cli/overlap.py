"""`roz overlap detect|rescore`: near-duplicates of test sets in a pretraining corpus (docs/overlap.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from roz.cli.common import _PLAIN, _log, app, console

overlap_app = typer.Typer(help="Near-duplicates of test sets in a pretraining corpus; clean test sets; ER on them.",
                          no_args_is_help=True, **_PLAIN)
app.add_typer(overlap_app, name="overlap")


@overlap_app.command("detect")
def overlap_detect_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory: results are written here; its models are re-scored."),
    test: List[str] = typer.Option(..., "--test", help="[LABEL=]FOLDER, an ImageNet-style test set; repeatable."),
    corpus: str = typer.Option(..., help="Image folder, .parquet/.csv list of paths, webdataset .tar shards (file, "
                               "folder or brace pattern), or a folder with img_emb/ + metadata/ (precomputed)."),
    detector: str = typer.Option("embedding", help="embedding (CLIP image embeddings, cosine) or phash."),
    encoder: str = typer.Option("openclip:RN50x16@openai", help="Image encoder spec for --detector embedding "
                                "(any ROZ model spec of a CLIP-like model, or 'tiny')."),
    threshold: Optional[float] = typer.Option(None, help="Similarity threshold [default: calibrated (embedding), "
                                              "the detector's default (phash)]."),
    corpus_kind: str = typer.Option("auto", help="auto, folder, list, webdataset, embeddings."),
    corpus_encoder: Optional[str] = typer.Option(None, help="Encoder that made precomputed embeddings (LAION's "
                                                 "release does not record it)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Corpus embeddings + index [default: $ROZ_HOME/overlap/KEY]."),
    memory_budget: Optional[float] = typer.Option(None, help="GiB for the approximate index [default: 8]."),
    index: str = typer.Option("auto", help="auto (exact up to 200k vectors, else IVF-PQ), flat or ivfpq."),
    ground_truth: Optional[Path] = typer.Option(None, help="planted_duplicates.json: report precision/recall."),
    bootstrap: int = typer.Option(1000, min=0, help="Bootstrap replicates for the accuracy CIs."),
    er_bootstrap: int = typer.Option(200, min=0, help="Paired-bootstrap replicates for the ER CIs."),
    seed: int = typer.Option(0),
):
    """Find near-duplicates, write duplicates tables + clean manifests + overlap.json into RUN_DIR."""
    from roz.api import overlap_detect
    from roz.overlap.runs import detection_line

    res = overlap_detect(run_dir, test, corpus, detector=detector, encoder=encoder, threshold=threshold,
                         corpus_kind=corpus_kind, corpus_encoder=corpus_encoder, cache_dir=cache_dir,
                         memory_budget_gib=memory_budget, index_kind=index, ground_truth=ground_truth, n_boot=bootstrap,
                         er_boot=er_bootstrap, seed=seed, log=_log)
    for split, entry in res.items():
        if isinstance(entry, dict) and "n_test" in entry:
            console.print(detection_line(split, entry), markup=False)
    console.print(f"threshold {res['protocol']['threshold']:.4f} ({res['protocol'].get('threshold_source')}); "
                  f"results: {run_dir / 'overlap.json'}", markup=False)


@overlap_app.command("rescore")
def overlap_rescore_cmd(run_dir: Path = typer.Argument(..., help="A run directory with overlap results."),
                        bootstrap: Optional[int] = typer.Option(None, min=0, help="[default: as recorded]"),
                        er_bootstrap: Optional[int] = typer.Option(None, min=0, help="[default: as recorded]"),
                        seed: Optional[int] = typer.Option(None, help="[default: as recorded]")):
    """Re-score stored per-sample rows on the stored clean sets (no model or detector is re-run)."""
    from roz.api import overlap_rescore

    res = overlap_rescore(run_dir, n_boot=bootstrap, er_boot=er_bootstrap, seed=seed)
    rows = res.get("er", {}).get("rows", [])
    console.print(f"re-scored {sum(1 for k in res if k not in ('format', 'protocol', 'er', 'gallery', 'comparisons'))} "
                  f"test set(s); {len(rows)} ER rows; {run_dir / 'overlap.json'}", markup=False)
