"""CLIP-Auto: AutoPrompt search and CoOp training on a tiny random open_clip, the prompt artefact,
and the prompted model (``prompted:ARTEFACT@BASE``) it becomes."""

import json

import pytest
import torch
import torch.nn.functional as F

from roz.errors import ModelError
from roz.models.adapters import create_model
from roz.models.prompt_search import search_prompts
from roz.models.prompt_towers import text_tower
from roz.models.prompted import ids_head, prompted_spec

AP = {"steps": 2, "runs": 2, "candidates": 4, "batch_size": 12, "top_k": 2}
COOP = {"n_ctx": 4, "epochs": 4, "batch_size": 8, "lr": 0.5}


def _search(fx, out, method="autoprompt", seed=0, params=None):
    return search_prompts(fx["openclip"], method, "imagefolder", fx["data"], out=out, shots=4, seed=seed,
                          params=params or (AP if method == "autoprompt" else COOP))


@pytest.fixture(scope="module")
def artefacts(fx, tmp_path_factory):
    d = tmp_path_factory.mktemp("prompts")
    return {"autoprompt": (d / "ap.json", _search(fx, d / "ap.json")),
            "coop": (d / "coop.json", _search(fx, d / "coop.json", "coop"))}


def _fewshot_logits(fx, model, art):
    from roz.datasets.registry import create_dataset

    ds = create_dataset("imagefolder", fx["data"])
    ds.transform = model.transform()
    x = torch.stack([ds[i][0] for i in art["data"]["indices"]])
    with torch.no_grad():
        return model(x)


def test_autoprompt_search_is_deterministic_for_a_seed(fx, artefacts, tmp_path):
    path, first = artefacts["autoprompt"]
    again = _search(fx, tmp_path / "again.json")
    keys = ("prompts", "runs", "score", "data")
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}
    other = _search(fx, tmp_path / "other.json", seed=1)
    assert other["data"]["indices"] != first["data"]["indices"]  # the seed reaches the draw too
    # the artefact: model identity, data, method, hyper-parameters; "a photo of a {}." always last
    assert first["model"]["weights_sha256"] == create_model(fx["openclip"]).identity.weights_sha256
    assert first["data"]["shots"] == 4 and len(first["data"]["indices"]) == 16
    assert first["hyper"]["n_trigger"] == 4 and first["method"] == "autoprompt"
    assert first["prompts"][-1]["text"] == "a photo of a {}." and len(first["prompts"]) == AP["top_k"] + 1
    assert all(len(p["prefix_ids"]) == 4 for p in first["prompts"][:-1])
    assert json.loads(path.read_text())["prompts"] == first["prompts"]


def test_saved_prompts_reload_to_identical_logits(fx, artefacts):
    for method, (path, art) in artefacts.items():
        spec = prompted_spec(path, fx["openclip"])
        a = create_model(spec, head_cache=False)
        b = create_model(spec)
        c = create_model(spec)  # a cache hit
        assert a.role == "zeroshot-auto" and c.head_cache_hit
        la, lb, lc = (_fewshot_logits(fx, m, art) for m in (a, b, c))
        assert torch.equal(la, lb) and torch.equal(la, lc)
        # the reloaded model scores the few-shot set exactly as the search recorded it
        targets = torch.tensor([a.classes.wnids.index(w) for w in _wnids_of(fx, art)])
        assert F.cross_entropy(la, targets).item() == pytest.approx(art["score"]["loss"], abs=1e-4), method


def _wnids_of(fx, art):
    from roz.datasets.registry import create_dataset

    ds = create_dataset("imagefolder", fx["data"])
    return [ds.labels.groups[ds.samples[i][1]][0] for i in art["data"]["indices"]]


def test_coop_context_file_is_verified(fx, artefacts, tmp_path):
    path, art = artefacts["coop"]
    ctx_file = path.parent / art["context"]["file"]
    assert torch.load(ctx_file, weights_only=True).shape == (4, 32)
    copy = tmp_path / "coop.json"
    copy.write_text(path.read_text())
    (tmp_path / art["context"]["file"]).write_bytes(ctx_file.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="sha256"):
        create_model(prompted_spec(copy, fx["openclip"]))


def test_coop_loss_decreases(artefacts):
    curve = artefacts["coop"][1]["loss_curve"]
    assert len(curve) == COOP["epochs"] and curve[-1] < curve[0]


def test_coop_class_specific_context_has_a_row_per_class(fx, tmp_path):
    art = _search(fx, tmp_path / "csc.json", "coop", params={**COOP, "epochs": 1, "class_specific": True})
    assert art["context"]["shape"] == [4, 4, 32] and art["context"]["wnids"] == fx["wnids"]
    m = create_model(prompted_spec(tmp_path / "csc.json", fx["openclip"]))
    sub = m.with_classes(m.classes.subset(fx["wnids"][1:3], name="two"))
    assert torch.allclose(sub.head, m.head[1:3], atol=1e-6)  # rows follow the wnids, not positions


def test_discrete_prompts_are_evaluated_from_token_ids(fx, tmp_path):
    """'hel' + 'lo</w>' decodes to "hello", which re-tokenises to one other token: the head must
    come from the recorded ids, and differ from the head of the decoded text."""
    base = create_model(fx["openclip"], templates="photo")
    tower = text_tower(base)
    enc = tower.tokenizer.encoder
    ids = [enc["hel"], enc["lo</w>"]]
    assert tower.token_ids(tower.decode(ids)) != ids
    art = {"roz_prompts": 1, "method": "autoprompt", "model": {"weights_sha256": base.identity.weights_sha256},
           "prompts": [{"prefix_ids": ids, "suffix_ids": tower.token_ids("."), "text": tower.decode(ids) + " {}."}]}
    (tmp_path / "p.json").write_text(json.dumps(art))
    m = create_model(prompted_spec(tmp_path / "p.json", fx["openclip"]))
    assert torch.equal(m.head, ids_head(tower, [(ids, tower.token_ids("."))], base.classes.names))
    text = create_model(fx["openclip"], templates=[tower.decode(ids) + " {}."])
    assert not torch.allclose(m.head, text.head, atol=1e-4)


def test_unpromptable_models_get_one_clear_error(fx, tmp_path, artefacts):
    with pytest.raises(ModelError, match="cannot be prompted"):
        search_prompts(fx["timm"], "autoprompt", "imagefolder", fx["data"], out=tmp_path / "x.json", shots=2,
                       params=AP)
    with pytest.raises(ModelError, match="cannot be prompted"):
        create_model(prompted_spec(artefacts["autoprompt"][0], fx["timm"]))


def test_artefact_refuses_other_weights(fx, artefacts, tmp_path):
    from support import tinymodels

    other, _ = tinymodels.openclip_checkpoint(tmp_path / "other", seed=1)
    with pytest.raises(ModelError, match="searched for weights"):
        create_model(prompted_spec(artefacts["autoprompt"][0], other))


def test_config_entry_with_prompts_is_zeroshot_auto_hashed_by_artefact(fx, artefacts, tmp_path):
    from roz.engine.plan import plan_units

    path = tmp_path / "p.json"
    path.write_text(artefacts["autoprompt"][0].read_text())
    cfg = {"models": [{"spec": fx["openclip"], "prompts": str(path), "name": "tiny-clip-auto"}],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"])}]}
    (unit,) = plan_units(cfg)
    assert unit.model.role == "zeroshot-auto" and unit.model.spec.startswith("prompted:")
    model = create_model(unit.model.spec, role=unit.model.role)
    assert model.describe()["role"] == "zeroshot-auto"
    art = json.loads(path.read_text())
    art["prompts"][0]["prefix_ids"][0] += 1  # another prompt: another artefact hash
    path.write_text(json.dumps(art))
    (changed,) = plan_units(cfg)
    assert changed.model.weights != unit.model.weights and changed.unit_id != unit.unit_id
    assert create_model(changed.model.spec).head_key != model.head_key


def test_prompts_and_templates_together_are_refused(fx, artefacts):
    from roz.engine.validate import validate_config
    from roz.errors import ConfigError

    with pytest.raises(ConfigError, match="either 'prompts' or 'templates'"):
        validate_config({"models": [{"spec": fx["openclip"], "prompts": str(artefacts["coop"][0]), "templates": "photo"}],
                         "datasets": [{"name": "imagefolder", "root": str(fx["data"])}]})


def test_prompts_path_in_a_yaml_config_is_relative_to_it(fx, artefacts, tmp_path):
    from roz.engine.plan import load_config, plan_units

    (tmp_path / "p.json").write_text(artefacts["autoprompt"][0].read_text())
    (tmp_path / "run.yaml").write_text(f"models: [{{spec: '{fx['openclip']}', prompts: p.json}}]\n"
                                       f"datasets: [{{name: imagefolder, root: '{fx['data']}'}}]\n")
    (unit,) = plan_units(load_config(tmp_path / "run.yaml"))
    assert unit.model.spec == f"prompted:{(tmp_path / 'p.json').resolve()}@{fx['openclip']}"


def test_clip_auto_models_pair_with_their_clip():
    from roz.metrics.relative import default_pairs

    roles = {"roz-mini-clip": "zeroshot", "roz-mini-clip-auto": "zeroshot-auto", "roz-mini-clip-coop": "zeroshot-auto",
             "mini-resnet": "standard"}
    assert sorted(default_pairs(roles)) == [("roz-mini-clip-auto", "roz-mini-clip"),
                                            ("roz-mini-clip-coop", "roz-mini-clip")]
