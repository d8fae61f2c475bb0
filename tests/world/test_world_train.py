"""ROZ-Mini model training: quick runs on a toy world, checkpoint round trips, the shipped set."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from roz.models.checkpoint import load_state_dict, read_sidecar, sha256_file
from roz.world import train, train_baselines, train_clip, train_common

N_CLASSES = 4


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = train.make_toy_world(tmp_path_factory.mktemp("toy-world"), n_classes=N_CLASSES, n_train=6, n_val=4,
                            n_corpus=48)
    out = tmp_path_factory.mktemp("toy-ckpt")
    models: dict = {}
    man = train.train_all(root, out, seed=0, quick=True, threads=1, log=lambda s: None, keep_models=models)
    return root, out, man, models


def _inputs(n=3, seed=1):
    return torch.rand(n, 3, train_common.IMAGE_SIZE, train_common.IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def test_quick_train_all_writes_a_valid_set(toy):
    root, out, man, _ = toy
    assert set(man) == {train.CLIP_ARCH} | {s.name for s in train.BASELINES}
    assert len(train.BASELINES) >= 8
    assert train.verify_manifest(out, deep=True) == []
    wnids = json.loads((root / "classes.json").read_text())["wnids"]
    for name, e in man.items():
        for k in ("file", "sha256", "bytes", "seed", "epochs", "train_seconds", "mini_val_top1", "code_version"):
            assert k in e, (name, k)
        assert e["code_version"].startswith("roz-")
        assert 0.0 <= e["mini_val_top1"] <= 100.0
        meta = read_sidecar(out / e["file"])
        assert meta["sha256"] == e["sha256"] == sha256_file(out / e["file"])
        assert meta["classes"] == "roz-mini" and meta["extra"]["wnids"] == wnids
        pp = meta["preprocess"]
        assert (pp["input_size"], pp["resize_size"], pp["interpolation"]) == (64, 64, "bicubic")
        if name == train.CLIP_ARCH:
            assert (meta["source"], meta["arch"], meta["role"]) == ("openclip", "roz-mini-clip", "zeroshot")
            assert pp["mean"] == list(train_common.CLIP_MEAN) and pp["std"] == list(train_common.CLIP_STD)
        else:
            assert meta["source"] in ("timm", "torchvision") and meta["role"] == "standard"
            assert "num_classes" not in meta["kwargs"]  # the adapters pass it from the class set
            assert pp["mean"] == list(train_common.IMAGENET_MEAN) and pp["std"] == list(train_common.IMAGENET_STD)
        # float16 on disk, float32 back
        sd = torch.load(out / e["file"], map_location="cpu", weights_only=True)
        assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())


def test_reload_with_library_constructors_gives_identical_outputs(toy):
    import open_clip
    import timm
    import torchvision

    _, out, man, models = toy
    x = _inputs()
    for name, e in man.items():
        meta = read_sidecar(out / e["file"])
        sd = load_state_dict(out / e["file"], verify=meta["sha256"])
        mem = models[name].eval()
        if meta["source"] == "openclip":
            open_clip.add_model_config(train_clip.CONFIG_DIR)
            m = open_clip.create_model(meta["arch"], pretrained=None, **meta["kwargs"])
            m.load_state_dict(sd, strict=True)
            m.eval()
            tokenizer = train_clip.get_tokenizer(out / meta["tokenizer"]["bpe"])
            tok = tokenizer(["a photo of a goldfish.", 'the word "banana".'])
            xn = train_common.normalize(x, meta["preprocess"]["mean"], meta["preprocess"]["std"])
            with torch.no_grad():
                assert torch.equal(m.encode_image(xn), mem.encode_image(xn))
                assert torch.equal(m.encode_text(tok), mem.encode_text(tok))
                assert torch.equal(m.logit_scale, mem.logit_scale)
        else:
            if meta["source"] == "timm":
                m = timm.create_model(meta["arch"], pretrained=False, num_classes=N_CLASSES, **meta["kwargs"])
            else:
                m = torchvision.models.get_model(meta["arch"], weights=None, num_classes=N_CLASSES, **meta["kwargs"])
            m.load_state_dict(sd, strict=True)
            m.eval()
            xn = train_common.normalize(x, meta["preprocess"]["mean"], meta["preprocess"]["std"])
            with torch.no_grad():
                y = m(xn)
                assert y.shape == (len(x), N_CLASSES)
                assert torch.equal(y, mem(xn)), name


def test_model_adapter_loads_the_checkpoints(toy):
    adapters = pytest.importorskip("roz.models.adapters")
    root, out, man, models = toy
    x = _inputs()
    base = next(s for s in train.BASELINES if s.source == "timm")
    for name in (train.CLIP_ARCH, base.name):
        m = adapters.create_model(f"local:{out / man[name]['file']}", classes=str(root / "classes.json"))
        with torch.no_grad():
            y = m(x)
        assert y.shape == (len(x), N_CLASSES)
        if name == base.name:  # the adapter normalises inside: same logits as the raw model on normalised x
            with torch.no_grad():
                ref = models[name].eval()(train_common.normalize(x, train_common.IMAGENET_MEAN, train_common.IMAGENET_STD))
            torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_losses_decrease(toy):
    _, _, man, _ = toy
    curve = man[train.CLIP_ARCH]["loss_curve"]
    assert len(curve) >= 2 and curve[-1] < curve[0]
    x, y = train_common.load_split(toy[0], "mini-train", train_common.load_world_classes(toy[0]))
    spec = next(s for s in train.BASELINES if s.arch == "resnet10t")
    _, info = train_baselines.train_baseline(spec, x, y, N_CLASSES, seed=0, epochs=6, batch_size=8, log=lambda s: None)
    assert info["loss_curve"][-1] < info["loss_curve"][0]


def test_training_is_deterministic_given_seed(toy):
    x, y = train_common.load_split(toy[0], "mini-train", train_common.load_world_classes(toy[0]))
    spec = next(s for s in train.BASELINES if s.arch == "resnet10t")
    sds = [train_baselines.train_baseline(spec, x, y, N_CLASSES, seed=3, epochs=1, batch_size=8, log=lambda s: None)[0].state_dict()
           for _ in range(2)]
    assert all(torch.equal(sds[0][k], sds[1][k]) for k in sds[0])


def test_verify_manifest_reports_problems(toy, tmp_path):
    _, out, man, _ = toy
    d = tmp_path / "ck"
    shutil.copytree(out, d)
    assert train.verify_manifest(d) == []
    base = next(s.name for s in train.BASELINES)
    f = d / man[base]["file"]
    f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
    (d / "stray.pt").write_bytes(b"x")
    bpe = d / train_clip.BPE_FILE
    bpe.write_bytes(bpe.read_bytes() + b"\x00")
    assert any("tokenizer" in p and train.CLIP_ARCH in p for p in train.verify_manifest(d))
    (d / man[train.CLIP_ARCH]["file"]).unlink()
    probs = train.verify_manifest(d)
    assert any("sha256" in p and base in p for p in probs)
    assert any("unlisted" in p and "stray.pt" in p for p in probs)
    assert any("missing" in p and train.CLIP_ARCH in p for p in probs)
    assert train.verify_manifest(tmp_path / "nowhere") != []


def test_clip_ships_its_compact_vocabulary(toy):
    """The CLIP's sidecar names the compact BPE file beside it; its vocabulary is the config's, and
    every caption and template the world writes splits into the same tokens as open_clip's full
    vocabulary (so training used the words, not byte pieces)."""
    import open_clip

    _, out, man, _ = toy
    meta = read_sidecar(out / man[train.CLIP_ARCH]["file"])
    block = meta["tokenizer"]
    assert block["bpe"] == train_clip.BPE_FILE and block["sha256"] == sha256_file(out / block["bpe"])
    tok = train_clip.get_tokenizer(out / block["bpe"])
    assert tok.vocab_size == block["vocab_size"] == train_clip.config_vocab_size() < 2000
    full = open_clip.get_tokenizer("ViT-B-32")
    texts = train_clip.vocabulary_texts()
    for t in texts[:: max(1, len(texts) // 3000)]:
        assert [tok.decoder[i] for i in tok.encode(t)] == [full.decoder[i] for i in full.encode(t)], t
    assert 0.0 <= meta["extra"]["reading_accuracy"] <= 100.0


def test_a_changed_vocabulary_is_refused_with_the_number_to_set(tmp_path, monkeypatch):
    from roz.errors import DataError

    monkeypatch.setattr(train_clip, "vocabulary_texts", lambda: ["a photo of a zebra.", "xylophone"])
    with pytest.raises(DataError, match="vocab_size"):
        train_clip.build_tokenizer(tmp_path)


@pytest.mark.skipif(not train.SHIPPED_DIR.is_dir(), reason="no shipped checkpoints in this checkout")
def test_shipped_checkpoints_match_their_manifest():
    assert train.verify_manifest(train.SHIPPED_DIR) == []
    man = train.load_manifest(train.SHIPPED_DIR)
    assert train.CLIP_ARCH in man and sum(e["role"] == "standard" for e in man.values()) >= 8
    total = sum(p.stat().st_size for p in train.SHIPPED_DIR.iterdir() if p.is_file())
    assert total <= train.SIZE_LIMIT_BYTES
    for name, e in man.items():
        assert not e.get("quick"), f"{name} is a quick (test) checkpoint"
        assert e["mini_val_top1"] > 100.0 / 66 * 1.5, name  # clearly above chance


@pytest.mark.skipif(not train.SHIPPED_DIR.is_dir(), reason="no shipped checkpoints in this checkout")
def test_shipped_clip_reads_held_out_word_cards():
    """The shipped CLIP reads (issue 17: target 80 %; the shipped model measures 81.9 % on
    mini-val's 1060 cards, the v1 CLIP 1.6 %). Freshly rendered cards (the word-cards probe:
    held-out fonts, fresh positions, plain backgrounds) of every single-word class name, classified
    zero-shot through the normal model adapter. 106 cards: 70 % leaves room for sampling noise
    (about 4 points of standard error) and is over 45x chance (1.5 %)."""
    from roz.models.adapters import create_model
    from roz.shifts.word_cards import WordCards
    from roz.world import register

    register()
    model = create_model(f"local:{train.SHIPPED_DIR / (train.CLIP_ARCH + '.pt')}")
    names = list(model.classes.names)
    y = torch.arange(len(names)).repeat(2)
    cards, _, ok = WordCards(names).apply_with_labels(torch.zeros(len(y), 3, 64, 64), torch.arange(len(y)) + 7, y)
    assert int(ok.sum()) >= 100  # 53 single-word classes x 2
    with torch.no_grad():
        pred = model(cards[ok]).argmax(1)
    assert (pred == y[ok]).float().mean().item() >= 0.7


def test_trimmed_text_encoding_matches_open_clip():
    """Training encodes captions only up to the batch's longest one; the causal text tower makes
    that the same as open_clip's full-context ``encode_text``."""
    torch.manual_seed(0)
    model = train_clip.create_clip().eval()
    eot = model.vocab_size - 1
    tokens = torch.zeros(4, model.context_length, dtype=torch.long)
    for i, n in enumerate((3, 9, 5, 14)):
        tokens[i, 0], tokens[i, n - 1] = eot - 1, eot
        tokens[i, 1:n - 1] = torch.randint(1, eot - 1, (n - 2,))
    with torch.no_grad():
        ref = model.encode_text(tokens, normalize=True)
        got = train_clip.encode_text_trimmed(model, tokens)
        short = train_clip.encode_text_trimmed(model, tokens[:1])  # a batch of only a 3-token text
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short, ref[:1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ref[0], ref[1])


def test_epoch_indices_draw_a_fresh_fraction_of_one_kind():
    groups = {"object": torch.arange(0, 40), "text": torch.arange(40, 70)}
    gen = torch.Generator().manual_seed(0)
    epochs = [train_clip.epoch_indices(groups, {"object": 0.5}, gen) for _ in range(2)]
    for e in epochs:
        assert len(e) == 20 + 30 and len(set(e.tolist())) == len(e)
        assert set(range(40, 70)) <= set(e.tolist())  # every text pair, every epoch
        assert sum(int(i) < 40 for i in e) == 20
    assert set(epochs[0].tolist()) != set(epochs[1].tolist())  # a fresh half of the objects
    full = train_clip.epoch_indices(groups, {}, gen)
    assert sorted(full.tolist()) == list(range(70))
