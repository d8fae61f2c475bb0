"""`roz paper`: the shipped preset against the paper's protocol, partial data, the plan and cost,
the check, and the whole preset end to end on a fixture tree with tiny models (docs/paper.md)."""

import json
import shutil

import pytest
import yaml

from roz.engine.validate import validate_config
from roz.metrics.testbed import read_testbed
from roz.paper.check import _weights_problem
from roz.paper.cost import attack_passes
from roz.paper.preset import apply_overrides, expand, load_preset
from roz.shifts.registry import parse_shift

PAPER_CLIPS = {"RN50", "RN101", "RN50x4", "RN50x16", "ViT-B-32", "ViT-B-16"}
ELEVEN = {"fgsm", "bim", "mim", "dim", "deepfool", "nes", "spsa", "transfer-fgsm", "transfer-bim", "transfer-mim",
          "transfer-dim"}


def _everything(tmp_path):
    return expand(load_preset(), data_root=str(tmp_path), exists=lambda name, root: True)


def test_the_shipped_preset_is_the_papers_protocol(tmp_path):
    plan = _everything(tmp_path)
    models = {m["name"]: m for m in plan.config["models"]}
    clips = [m for m in models.values() if m.get("role") == "zeroshot"]
    assert {m["spec"] for m in clips} == {f"openclip:{a}@openai" for a in PAPER_CLIPS}
    for m in clips:  # each CLIP has its CLIP-Auto variant, fed by a prompt search this command runs first
        auto = models[m["name"] + "-auto"]
        assert auto["spec"] == m["spec"] and auto["prompts"].startswith(str(plan.out / "prompts"))
    assert sorted(s["out"] for s in plan.prompt_steps) == sorted(m["prompts"] for m in models.values() if "prompts" in m)
    assert {s["dataset"] for s in plan.prompt_steps} == {"imagenet-val"}
    # every baseline is a testbed row with torchvision's original weights
    rows = set(read_testbed().acc.index)
    baselines = [b for b in load_preset()["baselines"]]
    assert len(baselines) >= 10 and all(b["testbed"] in rows and b["spec"].endswith("@IMAGENET1K_V1") for b in baselines)
    datasets = {d["name"] for d in plan.config["datasets"]}
    cells = [d["options"] for d in plan.config["datasets"] if d["name"] == "imagenet-c"]
    assert len(cells) == 75 and len({c["corruption"] for c in cells}) == 15  # the released ImageNet-C, 15 x 5
    assert {"imagenet-val", "imagenet-r", "imagenet-a", "imagenet-sketch", "objectnet", "imagenetv2-matched-frequency",
            "stylized-imagenet", "imagenet-p", "imagenet-c"} <= datasets
    assert plan.datasets["imagenet-r"] == str(tmp_path / "imagenet-r")
    # ImageNet-C: the released files are present here, so no on-the-fly corruptions; ImageNet-T on val
    shifts = [s if isinstance(s, str) else s["shift"] for s in plan.config["shifts"]]
    assert shifts == ["none", "typographic"]
    attacks = {a["name"]: a for a in plan.config["attacks"]}
    assert ELEVEN <= set(attacks) and {"pgd", "apgd-ce", "apgd-t", "square"} <= set(attacks)
    for name in ELEVEN:
        a = attacks[name]
        assert (a["eps_space"], a["min_eps"], a["min_eps_protocol"], a["limit"]) == ("normalized", True, "paper", 1000)
    assert attacks["deepfool"]["candidates"] == "all"
    assert {a.get("surrogate") for n, a in attacks.items() if n.startswith("transfer-")} == {
        "torchvision:resnet152@IMAGENET1K_V1"} and "surrogate" not in attacks["bim"]
    # models, shifts and attacks are what `roz run` accepts (roots are checked there: one stand-in here)
    validate_config({**plan.config, "models": [m for m in plan.config["models"] if "prompts" not in m], "datasets": [{"name": "imagefolder", "root": str(tmp_path), "label": "imagenet-val"}]})


def test_without_released_imagenet_c_the_75_corruptions_run_on_the_fly(tmp_path):
    plan = expand(load_preset(), data_root=str(tmp_path), exists=lambda name, root: name != "imagenet-c")
    corr = [s for s in plan.config["shifts"] if isinstance(s, dict) and s["shift"].startswith("corruption")]
    assert [s["datasets"] for s in corr] == [["imagenet-val"]]
    units = parse_shift(corr[0]["shift"])
    assert len(units) == 75 and len({u["corruption"] for u in units}) == 15
    assert any("imagenet-c" in m for m in plan.missing)


def test_partial_data_is_listed_and_skipped_never_silently(tmp_path):
    (tmp_path / "imagenet-r").mkdir()
    plan = expand(load_preset(), data_root=str(tmp_path))
    assert list(plan.datasets) == ["imagenet-r"]
    for name in ("imagenet-val", "imagenet-a", "objectnet", "stylized-imagenet", "imagenet-p"):
        assert any(m.startswith(f"dataset {name}: no data at") for m in plan.missing), name
    assert any("CLIP-Auto" in m for m in plan.missing) and not plan.prompt_steps
    assert not any("prompts" in m for m in plan.config["models"])
    assert plan.config["attacks"] == [] and any(m.startswith("skipped attack fgsm") for m in plan.missing)
    assert any("no --corpus" in m for m in plan.missing)


def test_overrides_replace_keys_and_bad_ones_are_one_clear_error(tmp_path):
    from roz.errors import ConfigError

    over = tmp_path / "o.yaml"
    over.write_text(yaml.safe_dump({"clip_models": [{"name": "c", "spec": "openclip:RN50@openai"}]}))
    spec = apply_overrides(load_preset(), [over], ["datasets.imagenet-r.root=/elsewhere/r", "paper_attacks.common.limit=8"])
    assert spec["clip_models"] == [{"name": "c", "spec": "openclip:RN50@openai"}]
    assert spec["datasets"]["imagenet-r"]["root"] == "/elsewhere/r"
    assert spec["datasets"]["imagenet-a"]["root"] == "{data_root}/imagenet-a"
    assert spec["paper_attacks"]["common"]["limit"] == 8 and spec["paper_attacks"]["common"]["min_eps"] is True
    with pytest.raises(ConfigError, match="unknown keys"):
        apply_overrides(load_preset(), sets=["atacks=[]"])
    with pytest.raises(ConfigError, match="needs --data-root"):
        expand(load_preset(), data_root=None)


def test_dry_run_prints_units_passes_and_wall_time(roz_cli, tmp_path):
    code, out, err = roz_cli("paper", "--dry-run", "--assume-present", "--data-root", tmp_path, "--devices", "1,8")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] and
            line.split()[0] in ("prompt-search", "eval", "shift", "attack")}
    n_models, n_data = 6 * 2 + 14, 7 + 75 + 10  # 7 datasets, ImageNet-C cells, ImageNet-P perturbations
    assert rows["prompt-search"][0] == "6" and rows["eval"][0] == str(n_models * n_data)
    assert rows["shift"][0] == str(n_models * 1) and rows["attack"][0] == str(n_models * 15)
    assert int(rows["attack"][1].replace(",", "")) == n_models * 15 * 1000  # the 1,000-image subsets
    assert "estimated wall time on 8 device(s)" in out and "assumed" in out
    assert attack_passes({"name": "deepfool", "candidates": "all"}) == (50.0, 50_000.0)
    fwd, bwd = attack_passes({"name": "bim", "eps": [0.001, 0.002], "min_eps": True})
    assert (fwd, bwd) == ((2 + 4) * 21, (2 + 4) * 20)  # 2 eps + log2(10) trials of 20 steps


def test_check_lists_every_missing_piece_at_once(roz_cli, tmp_path, monkeypatch):
    (tmp_path / "imagenet-r").mkdir()  # present but empty: fails its check
    code, out, err = roz_cli("paper", "--check", "--data-root", tmp_path, "--set",
                             "clip_models=[{name: c, spec: 'openclip:RN50@/nowhere/rn50.pt', auto: true}]",
                             "--set", "baselines=[{name: b, spec: 'timm:resnet50@/nowhere/r50.pt'}]",
                             "--set", "paper_attacks.attacks=[{name: fgsm, datasets: [imagenet-r], stepz: 3}]")
    assert code == 1, err
    assert "run config: attacks[0]" in out and "stepz" in out  # the config as `roz run` checks it
    assert "dataset imagenet-r at" in out and "dataset imagenet-val: no data at" in out
    assert "model openclip:RN50@/nowhere/rn50.pt: no file" in out and "model timm:resnet50@/nowhere/r50.pt: no file" in out
    assert "skipped overlap: no --corpus given" in out
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert "not in the local cache" in _weights_problem("torchvision:resnet50@IMAGENET1K_V1")


@pytest.mark.slow
def test_the_whole_preset_runs_end_to_end_on_fixtures_with_tiny_models(fx, roz_cli, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in sorted(fx["data"].rglob("*.JPEG"))[::5]:  # some test images are in the "pretraining" corpus
        shutil.copy(p, corpus / f"{p.parent.name}_{p.name}")
    over = tmp_path / "tiny.yaml"
    over.write_text(yaml.safe_dump({
        "clip_models": [{"name": "tiny-clip", "spec": fx["openclip"], "auto": True}],
        "clip_auto": {"method": "coop", "dataset": "imagenet-val", "shots": 2, "params": {"n_ctx": 2, "epochs": 1}},
        "baselines": [{"name": "tiny-vit", "spec": fx["timm"]}],
        "datasets": {"imagenet-val": {"name": "imagefolder", "root": str(fx["data"])}},
        "shifts": [{"shift": "corruption:fog,contrast:1", "datasets": ["imagenet-val"]},
                   {"shift": "typographic", "datasets": ["imagenet-val"]}],
        "paper_attacks": {"surrogate": fx["timm"], "common": {"limit": 4, "eps": [0.005]}},  # the eleven, as shipped
        "modern_attacks": {"common": {"limit": 4, "eps": ["2/255"]}, "attacks": [  # Square: 100 queries, not 5,000
            {"name": "pgd"}, {"name": "apgd-ce"}, {"name": "apgd-t"}, {"name": "square", "n_queries": 100}]},
        "overlap": {"encoder": "tiny", "datasets": ["imagenet-val"]},
        "reports": [{"out": "report-testbed", "baseline": "testbed", "bootstrap": 20},
                    {"out": "report", "baseline": "run", "bootstrap": 20}],
    }))
    run = tmp_path / "run"
    code, out, err = roz_cli("paper", "--override", over, "--data-root", tmp_path / "nodata", "--set",
                             "datasets.imagenet-p=null", "--corpus", corpus, "--out", run, "--device", "cpu")
    assert code == 0, err
    plan = json.loads((run / "paper-plan.json").read_text())  # partial data: listed, skipped
    assert sorted(m.split(":")[0] for m in plan["missing"]) == sorted(
        f"dataset {d}" for d in ("imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-r", "imagenet-a",
                                 "objectnet", "imagenet-c", "stylized-imagenet"))
    assert "MISSING (skipped): dataset imagenet-r" in err 
    assert [(d["name"], d.get("label")) for d in plan["config"]["datasets"]] == [("imagefolder", "imagenet-val")]
    assert (run / "prompts" / "tiny-clip.json").is_file()
    from roz.engine.store import ResultStore

    recs = ResultStore(run, create=False).records()
    attacked = {(r.model.name, r.attack["name"]) for r in recs if r.attack}
    assert {a for _, a in attacked} == ELEVEN | {"pgd", "apgd-ce", "apgd-t", "square"}
    assert {m for m, _ in attacked} == {"tiny-clip", "tiny-clip-auto", "tiny-vit"}
    assert (run / "overlap.json").is_file()
    assert (run / "report-testbed" / "index.html").is_file() and (run / "report" / "index.html").is_file()


def test_measured_throughput_is_used_and_labelled(fx, tmp_path):
    from roz.paper.cost import dataset_sizes, measure_throughput, plan_cost

    spec = apply_overrides(load_preset(), sets=["clip_models=[]", f"baselines=[{{name: t, spec: '{fx['timm']}'}}]",
                                                f"datasets={{imagenet-val: {{name: imagefolder, root: '{fx['data']}'}}}}"])
    spec["datasets"] = {"imagenet-val": spec["datasets"]["imagenet-val"]}
    plan = expand(spec, data_root=None)
    rate = measure_throughput({"t": fx["timm"]})
    assert rate["t"] > 0
    sizes = dataset_sizes(plan)
    assert sizes == {"imagenet-val": 24}  # a folder without a published size: its files, counted
    slow, fast = plan_cost(plan, sizes, {"t": 10.0}), plan_cost(plan, sizes, {"t": 20.0})
    assert slow["throughput"] == "measured" and "assumed" in plan_cost(plan, sizes)["throughput"]
    assert slow["total_seconds"] == pytest.approx(2 * fast["total_seconds"])
    assert slow["kinds"]["eval"]["images"] == 24  # clean
    assert (slow["kinds"]["shift"]["units"], slow["kinds"]["shift"]["images"]) == (76, 76 * 24)  # 75 corruptions + ImageNet-T
