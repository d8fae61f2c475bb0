"""`roz prompts search`: the artefact from the command line, and its errors."""

import json

from roz.models.adapters import create_model
from roz.models.prompted import prompted_spec


def test_prompts_search_writes_an_artefact_the_model_spec_loads(fx, roz_cli, tmp_path):
    out = tmp_path / "p.json"
    code, _, err = roz_cli("prompts", "search", "--model", fx["openclip"], "--method", "coop", "--dataset",
                           "imagefolder", "--root", fx["data"], "--shots", 2, "--seed", 3, "--out", out,
                           "--param", "n_ctx=2", "--param", "epochs=1")
    assert code == 0, err
    art = json.loads(out.read_text())
    assert art["method"] == "coop" and art["seed"] == 3 and art["data"]["shots"] == 2
    assert art["hyper"]["n_ctx"] == 2 and (tmp_path / art["context"]["file"]).is_file()
    assert create_model(prompted_spec(out, fx["openclip"])).role == "zeroshot-auto"


def test_prompts_search_bad_input_is_one_line(fx, roz_cli, tmp_path):
    code, _, err = roz_cli("prompts", "search", "--model", fx["openclip"], "--dataset", "imagefolder", "--root",
                           fx["data"], "--out", tmp_path / "p.json", "--param", "stepz=3")
    assert code == 2 and "unknown parameter(s) ['stepz']" in err and "Traceback" not in err
    code, _, err = roz_cli("prompts", "search", "--model", fx["timm"], "--dataset", "imagefolder", "--root",
                           fx["data"], "--out", tmp_path / "p.json", "--param", "steps=1")
    assert code == 2 and "cannot be prompted" in err


def test_models_lists_the_shipped_prompted_clips_as_prompted_specs(roz_cli):
    code, printed, _ = roz_cli("models")
    lines = [line.split() for line in printed.splitlines()]
    auto = next(parts for parts in lines if parts[:1] == ["roz-mini-clip-auto"])
    assert code == 0 and auto[1].startswith("prompted:") and auto[1].endswith("roz-mini-clip.pt")
    assert not any(parts[:1] == ["PROMPTS"] or parts[:1] == ["roz-mini-clip-coop"] and parts[1].startswith("local:")
                   for parts in lines)
