"""CLIP-Auto on Hugging Face CLIPs: the transformers text tower run on embeddings, and AutoPrompt /
CoOp through ``hf:`` specs (a tiny random transformers CLIPModel saved with the real CLIP BPE)."""

import json

import pytest
import torch
import torch.nn.functional as F

from roz.models.adapters import create_model
from roz.models.prompt_search import search_prompts
from roz.models.prompt_towers import text_tower
from roz.models.prompt_text_hf import HFTextTower
from roz.models.prompted import prompted_spec

AP = {"steps": 2, "runs": 2, "candidates": 4, "batch_size": 12, "top_k": 2}
COOP = {"n_ctx": 4, "epochs": 4, "batch_size": 8, "lr": 0.5}
NAMES = ["tench", "goldfish", "shark", "tiger shark"]


@pytest.fixture(scope="module")
def hf(fx, tmp_path_factory):
    from support import tinymodels

    tmp = tmp_path_factory.mktemp("hfclip")
    d = tinymodels.hf_clip_dir(tmp)
    (tmp / "cls.json").write_text(json.dumps({"wnids": fx["wnids"], "names": NAMES}))
    return {"spec": f"hf:{d}", "classes": str(tmp / "cls.json"), "tmp": tmp}


def _search(fx, hf, out, method, seed=0):
    return search_prompts(hf["spec"], method, "imagefolder", fx["data"], out=out, shots=4, seed=seed,
                          classes=hf["classes"], params=AP if method == "autoprompt" else COOP)


def _random_sequences(tower, gen, n=5):
    rows = []
    for _ in range(n):
        body = torch.randint(1, tower.sot, (int(torch.randint(1, 12, (1,), generator=gen)),), generator=gen)
        rows.append(tower.sequence([], body.tolist(), []))
    return torch.tensor(rows)


@pytest.mark.parametrize("eos_token_id", [None, 2])  # the config's own, and transformers' legacy argmax rule
def test_encode_embeds_equals_get_text_features(hf, eos_token_id):
    base = create_model(hf["spec"], classes=hf["classes"], templates="photo")
    tower = text_tower(base)
    assert isinstance(tower, HFTextTower) and tower.context_length == 77
    model = base.encoder.model
    if eos_token_id is not None:
        model.text_model.eos_token_id = eos_token_id
    ids = _random_sequences(tower, torch.Generator().manual_seed(0))
    eot = (ids == tower.eot).int().argmax(1)
    with torch.no_grad():
        want = model.get_text_features(input_ids=ids).pooler_output
        got_ids = tower.encode_ids(ids)
        got = tower.encode_embeds(tower.embeddings[ids], eot)
        cut = ids[:, :int(eot.max()) + 1]  # how AutoPrompt/CoOp call it: cut after the longest EOS
        got_cut = tower.encode_embeds(tower.embeddings[cut], eot)
    assert want.shape == (5, 16) and want.std() > 0
    assert torch.equal(got_ids, want)
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(got_cut, want, atol=1e-5)
    # the layout matches the tokenizer's own: the zero-shot head's text path gives the same features
    text = "a photo of a tiger shark."
    with torch.no_grad():
        ours = tower.encode_ids(torch.tensor([tower.sequence([], tower.token_ids(text), [])]))
        theirs = base.encoder.encode_text([text, "a much longer photo of a little tench fish."])[:1]
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_gradients_reach_the_input_embeddings(hf):
    tower = text_tower(create_model(hf["spec"], classes=hf["classes"], templates="photo"))
    ids = _random_sequences(tower, torch.Generator().manual_seed(1), n=2)
    eot = (ids == tower.eot).int().argmax(1)
    emb = tower.embeddings.detach()[ids].clone().requires_grad_(True)
    tower.encode_embeds(emb, eot).sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    # causal: nothing after the EOS position influences the pooled feature
    assert emb.grad[0, int(eot[0]) + 1:].abs().sum() == 0


@pytest.mark.parametrize("method", ["autoprompt", "coop"])
def test_prompt_search_on_hf_clip_is_deterministic_and_reloads(fx, hf, method, tmp_path):
    first = _search(fx, hf, tmp_path / "a.json", method)
    again = _search(fx, hf, tmp_path / "b.json", method)
    keys = ("prompts", "runs", "score", "data") if method == "autoprompt" else ("score", "data", "loss_curve")
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}
    assert first["model"]["identity"]["source"] == "hf" and first["method"] == method
    if method == "autoprompt":
        assert first["prompts"][-1]["text"] == "a photo of a {}." and len(first["prompts"]) == AP["top_k"] + 1
        assert all(len(p["prefix_ids"]) == 4 for p in first["prompts"][:-1])
    else:
        assert first["context"]["sha256"] == again["context"]["sha256"]
        ctx = torch.load(tmp_path / first["context"]["file"], weights_only=True)
        assert first["context"]["n_ctx"] == 4 and tuple(ctx.shape) == (4, 32)
        assert first["loss_curve"][-1] < first["loss_curve"][0]
    # the saved artefact becomes a zero-shot-auto model that scores the few-shot set as recorded
    model = create_model(prompted_spec(tmp_path / "a.json", hf["spec"]), classes=hf["classes"])
    assert model.role == "zeroshot-auto"
    from roz.datasets.registry import create_dataset

    ds = create_dataset("imagefolder", fx["data"])
    ds.transform = model.transform()
    idx = first["data"]["indices"]
    x = torch.stack([ds[i][0] for i in idx])
    targets = torch.tensor([model.classes.wnids.index(ds.labels.groups[ds.samples[i][1]][0]) for i in idx])
    with torch.no_grad():
        loss = F.cross_entropy(model(x), targets).item()
    assert loss == pytest.approx(first["score"]["loss"], abs=1e-4)
