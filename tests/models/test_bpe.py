"""Compact open_clip vocabularies (roz.models.bpe) and checkpoints that ship one beside their weights."""

import gzip
import json
from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer, default_bpe

from roz.datasets.classes import imagenet_1k
from roz.errors import ModelError
from roz.models.adapters import create_model
from roz.models.bpe import build_compact_bpe, compact_merges, load_tokenizer, read_merges, write_bpe
from roz.models.checkpoint import save_checkpoint
from roz.models.prompts import get_templates
from support.tinymodels import OPENCLIP_CFG, WNIDS

TEMPLATES = ["a photo of a {}.", "a drawing of the {}."]
NAMES = ["tench", "goldfish", "great white shark", "tiger shark"]  # the names of WNIDS
UNSEEN = ["xylophonist", "Zürich", "a wall of 1234 ÆØÅ glyphs, ok?"]


@pytest.fixture(scope="module")
def texts():
    """CLIP's 80 templates × 40 ImageNet class names (3,200 prompts)."""
    names = imagenet_1k().names[::25]
    return [t.format(n) for t in get_templates("openai-80") for n in names]


@pytest.fixture(scope="module")
def compact(texts, tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "compact.bpe.txt.gz"
    record = build_compact_bpe(texts, path)
    return path, record


def _strings(tok, ids) -> list[str]:
    return [tok.decoder[int(i)] for i in ids]


def test_compact_tokenizer_splits_every_text_like_the_full_one(texts, compact):
    path, record = compact
    small, full = SimpleTokenizer(bpe_path=str(path)), SimpleTokenizer()
    for text in texts:
        assert _strings(small, small.encode(text)) == _strings(full, full.encode(text)), text
    # the model input too: [SOT] ... [EOT] 0 ... (pad 0 is "!" in both vocabularies)
    a, b = small(texts), full(texts)
    assert [_strings(small, row) for row in a.tolist()] == [_strings(full, row) for row in b.tolist()]
    assert int(a.max()) == small.eot_token_id == record["vocab_size"] - 1
    # a word no text has still encodes (smaller pieces), within the vocabulary, and decodes back
    for word in UNSEEN:
        ids = small.encode(word)
        assert ids and max(ids) < small.vocab_size
        assert small.decode(ids).strip() == full.decode(full.encode(word)).strip()
        assert len(ids) >= len(full.encode(word))


def test_every_kept_merge_is_one_the_texts_use(texts, compact):
    """The subset is minimal: dropping any kept merge changes how some text is split."""
    path, record = compact
    merges = read_merges(path)
    assert merges == compact_merges(texts) and len(merges) == record["n_merges"]
    full_ranks = SimpleTokenizer().bpe_ranks
    assert [full_ranks[m] for m in merges] == sorted(full_ranks[m] for m in merges)  # original rank order
    full = SimpleTokenizer()
    words = sorted({w for t in texts for w in full.pat.findall(full.clean_fn(t))})
    for k in range(0, len(merges), max(1, len(merges) // 12)):
        fewer = path.with_name(f"fewer{k}.bpe.txt.gz")
        write_bpe(merges[:k] + merges[k + 1:], fewer)
        small = SimpleTokenizer(bpe_path=str(fewer))
        assert any(_strings(small, small.encode(w)) != _strings(full, full.encode(w)) for w in words), merges[k]


def test_bpe_file_is_deterministic_small_and_recorded(texts, compact, tmp_path):
    path, record = compact
    again = build_compact_bpe(texts, tmp_path / "again.bpe.txt.gz")
    assert (tmp_path / "again.bpe.txt.gz").read_bytes() == path.read_bytes()
    assert {k: v for k, v in again.items() if k != "bpe"} == {k: v for k, v in record.items() if k != "bpe"}
    source = Path(default_bpe())
    assert path.stat().st_size * 50 < source.stat().st_size
    assert record["kind"] == "open_clip-bpe" and record["bpe"] == path.name
    assert record["vocab_size"] == 512 + record["n_merges"] + 2 == SimpleTokenizer(bpe_path=str(path)).vocab_size
    assert 100 < record["n_merges"] < 5000
    import hashlib

    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["source"] == {"file": "bpe_simple_vocab_16e6.txt.gz",
                                "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    lines = gzip.decompress(path.read_bytes()).decode().split("\n")
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + record["n_merges"]


def test_load_tokenizer_reads_the_file_and_refuses_a_bad_one(compact, tmp_path):
    path, record = compact
    tok = load_tokenizer("RN50", path, context_length=16)
    assert isinstance(tok, SimpleTokenizer) and tok.vocab_size == record["vocab_size"]
    assert tok("a photo of a goldfish.").shape == (1, 16)
    with pytest.raises(ModelError, match="not found"):
        load_tokenizer("RN50", tmp_path / "nope.bpe.txt.gz")
    (tmp_path / "plain.gz").write_text("#version: 0.2\na b\n")
    with pytest.raises(ModelError, match="not a gzipped BPE"):
        load_tokenizer("RN50", tmp_path / "plain.gz")
    (tmp_path / "line.gz").write_bytes(gzip.compress(b"#version: 0.2\na b\nabc"))
    with pytest.raises(ModelError, match="line 3"):
        load_tokenizer("RN50", tmp_path / "line.gz")


# ------------------------------------------------------------------------------- checkpoints
def _clip(tmp: Path, rows: int, tokenizer_texts=None, seed: int = 0) -> tuple[Path, Path, dict | None]:
    """(weights, config file, tokenizer record) of a tiny open_clip CLIP with ``rows`` token embeddings,
    a compact BPE of ``tokenizer_texts`` beside it (sidecar ``tokenizer``) when given."""
    arch = f"tiny-bpe-clip-{rows}"
    cfg = tmp / "configs" / f"{arch}.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({**OPENCLIP_CFG, "text_cfg": {**OPENCLIP_CFG["text_cfg"], "vocab_size": rows}}))
    open_clip.add_model_config(cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    meta = {"source": "openclip", "arch": arch, "classes": WNIDS, "role": "zeroshot", "templates": TEMPLATES}
    record = None
    if tokenizer_texts is not None:
        record = build_compact_bpe(tokenizer_texts, tmp / "w" / "clip.bpe.txt.gz")
        assert record["vocab_size"] <= rows
        meta["tokenizer"] = record
    return save_checkpoint(model.state_dict(), tmp / "w" / "clip.pt", meta), cfg, record


def _prompts():
    return [t.format(n) for t in TEMPLATES for n in NAMES]


@pytest.mark.parametrize("form", ["local", "openclip"])
def test_checkpoint_with_compact_tokenizer_classifies_with_it(tmp_path, form):
    n_tokens = build_compact_bpe(_prompts(), tmp_path / "probe.gz")["vocab_size"]
    weights, cfg, record = _clip(tmp_path, n_tokens, _prompts())
    spec = f"local:{weights}" if form == "local" else f"openclip:{cfg}@{weights}"
    model = create_model(spec, head_cache=False)
    tok = model.encoder.tokenizer
    assert tok.vocab_size == n_tokens and model.identity.extra["tokenizer_sha256"] == record["sha256"]
    inner = model.encoder.model
    compact = SimpleTokenizer(bpe_path=str(weights.with_name(record["bpe"])), context_length=16)
    with torch.no_grad():
        prompt = ["a photo of a goldfish."]
        assert torch.equal(model.encoder.encode_text(prompt), inner.encode_text(compact(prompt)))
        # the head: CLIP's recipe over the compact ids
        rows = []
        for name in NAMES:
            e = inner.encode_text(compact([t.format(name) for t in TEMPLATES])).float()
            e = (e / e.norm(dim=-1, keepdim=True)).mean(0)
            rows.append(e / e.norm())
        torch.testing.assert_close(model.head, torch.stack(rows))
        x = torch.rand(2, 3, model.input_size, model.input_size)
        assert model(x).shape == (2, len(WNIDS)) and torch.isfinite(model(x)).all()


def test_tokenizer_file_is_checked(tmp_path):
    weights, _, record = _clip(tmp_path, 1000, _prompts())
    bpe = weights.with_name(record["bpe"])
    good = bpe.read_bytes()
    write_bpe(read_merges(bpe)[:-1], bpe)  # one merge fewer: another tokenizer
    with pytest.raises(ModelError, match=f"tokenizer file .*{bpe.name} does not match the sha256") as err:
        create_model(f"local:{weights}")
    assert record["sha256"] in str(err.value) and "restore" in err.value.hint
    bpe.unlink()
    with pytest.raises(ModelError, match=f"tokenizer file .*{bpe.name} .* is missing"):
        create_model(f"local:{weights}")
    bpe.write_bytes(good)
    assert create_model(f"local:{weights}").encoder.tokenizer.vocab_size == record["vocab_size"]


@pytest.mark.parametrize("weights", ["file", "none"])
def test_tokenizer_larger_than_the_embedding_is_refused(tmp_path, weights):
    """The full 49,408-token tokenizer for a 1,000-row embedding: one clear error, not an IndexError."""
    path, cfg, _ = _clip(tmp_path, 1000)
    spec = f"openclip:{cfg}@{path if weights == 'file' else 'none'}"
    with pytest.raises(ModelError, match="the tokenizer has 49408 tokens but the model's text tower embeds only 1000") \
            as err:
        create_model(spec, classes=str(_classes(tmp_path)), templates="simple", head_cache=False)
    assert "sidecar 'tokenizer'" in err.value.hint


def _classes(tmp: Path) -> Path:
    path = tmp / "classes.json"
    path.write_text(json.dumps({"wnids": WNIDS, "names": NAMES}))
    return path


def test_the_tokenizer_is_part_of_the_identity(tmp_path):
    """Same weights, two tokenizers: different identities, heads and unit ids."""
    from roz.engine.fingerprint import weights_sha256

    more = _prompts() + ["a sculpture of a {}.".format(n) for n in NAMES]
    rows = max(build_compact_bpe(t, tmp_path / "probe.gz")["vocab_size"] for t in (_prompts(), more))
    a, _, rec_a = _clip(tmp_path / "a", rows, _prompts())
    b, _, rec_b = _clip(tmp_path / "b", rows, more)
    assert a.read_bytes() == b.read_bytes() and rec_a["sha256"] != rec_b["sha256"]
    model_a, model_b = create_model(f"local:{a}"), create_model(f"local:{b}")
    assert model_a.identity.weights_sha256 == model_b.identity.weights_sha256
    assert model_a.identity.to_dict() != model_b.identity.to_dict()
    assert model_a.head_key != model_b.head_key
    assert weights_sha256(f"local:{a}") != weights_sha256(f"local:{b}")


def test_autoprompt_only_picks_tokens_the_tokenizer_has(tmp_path):
    """An embedding with more rows than the compact tokenizer has tokens: triggers stay inside it."""
    from roz.models.autoprompt import AutoPromptConfig, search
    from roz.models.prompt_towers import text_tower

    n_tokens = build_compact_bpe(_prompts(), tmp_path / "probe.gz")["vocab_size"]
    weights, _, _ = _clip(tmp_path, 4 * n_tokens, _prompts())
    model = create_model(f"local:{weights}", head_cache=False)
    tower = text_tower(model)
    assert tower.vocab_size == n_tokens
    gen = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(16, 16, generator=gen), dim=-1)
    targets = torch.arange(16) % len(NAMES)
    cfg = AutoPromptConfig(n_trigger=3, candidates=4, steps=3, runs=3, batch_size=8)
    found = search(tower, NAMES, feats, targets, cfg, seed=0)
    triggers = [t for f in found["ranked"] for t in f["triggers"]]
    assert max(triggers) < n_tokens and tower.eot not in triggers
    assert all(tower.decode(f["triggers"]) for f in found["ranked"])
