"""`roz prompts search` and `roz world prompts`: CLIP-Auto prompt artefacts (docs/prompts.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from roz.cli.common import _PLAIN, _log, app, console, world_app
from roz.errors import RozError

prompts_app = typer.Typer(help="Search prompts for a CLIP (CLIP-Auto: AutoPrompt, CoOp); see docs/prompts.md.",
                          no_args_is_help=True, **_PLAIN)
app.add_typer(prompts_app, name="prompts")


def _params(items: Optional[List[str]]) -> dict:
    """``KEY=VALUE`` pairs; VALUE read as JSON when it parses (numbers, true/false), else a string."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RozError(f"--param {item!r} is not KEY=VALUE", hint="e.g. --param steps=40 --param n_trigger=4")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@prompts_app.command("search")
def prompts_search(
    model: str = typer.Option(..., "--model", "-m", help="CLIP spec (openclip: or local:), e.g. openclip:ViT-B-32@openai."),
    method: str = typer.Option("autoprompt", "--method", help="autoprompt (discrete, the paper's) or coop (continuous)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Registered dataset name of the few-shot source."),
    root: Path = typer.Option(..., "--root", "-r", help="Dataset root (the split the shots are drawn from)."),
    shots: int = typer.Option(16, help="Labelled images per class (a seeded class-stratified draw, recorded)."),
    seed: int = typer.Option(0, help="Seed of the draw, the initialisation and the search."),
    out: Path = typer.Option(Path("prompts.json"), "--out", "-o", help="The artefact (CoOp: + .context.pt beside it)."),
    classes: Optional[str] = typer.Option(None, help="Class set of the head (default: the model's)."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Method parameter KEY=VALUE (repeatable), e.g. "
                                              "steps=40, runs=4, n_trigger=4, candidates=16, top_k=3; coop: n_ctx=16, "
                                              "epochs=50, class_specific=true."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N."),
):
    """Search prompts on a few-shot set and write prompts.json; use it as {spec: ..., prompts: prompts.json}."""
    from roz.api import search_prompts

    art = search_prompts(model, method, dataset, root, out=out, shots=shots, seed=seed, classes=classes,
                         params=_params(param), device=device, log=_log)
    console.print(f"{out}: few-shot top-1 {art['score']['top1']:.2f}% (a photo of a {{}}.: "
                  f"{art['baseline']['top1']:.2f}%), {art['seconds']:.0f} s", markup=False)


@world_app.command("prompts")
def world_prompts(out: Path = typer.Option(Path("roz-mini-prompts"), help="Where to write the artefacts."),
                  seed: int = typer.Option(0)):
    """Reproduce the shipped ROZ-Mini prompt artefacts (AutoPrompt + CoOp for the tiny CLIP on mini-train)."""
    from roz.world.prompts import search_world_prompts

    console.print_json(json.dumps(search_world_prompts(out, seed=seed, log=_log), default=str))
