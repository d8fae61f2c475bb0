"""Prompt inputs other tools publish: per-class prompt JSON (CuPL), template text files, CLIP_benchmark's
per-dataset template JSON and multilingual class-name JSON. Each builds the head CLIP's recipe gives
for those texts, and each is in the head's hash: editing the file changes the head key."""

from __future__ import annotations

import json

import pytest
import torch

from roz.datasets.classes import get_class_set, imagenet_1k
from roz.errors import DataError, RozError
from roz.models.adapters import create_model
from roz.models.prompt_files import ClassPrompts
from roz.models.zeroshot import build_head

FOUR = ["n01440764", "n01443537", "n01484850", "n01491361"]  # tench, goldfish, great white shark, tiger shark


@pytest.fixture
def four(tmp_path):
    names = [dict(zip(imagenet_1k().wnids, imagenet_1k().names))[w] for w in FOUR]
    path = tmp_path / "four.json"
    path.write_text(json.dumps({"wnids": FOUR, "names": names}))
    return path, names


def hand_head(enc, per_class_texts):
    """CLIP's recipe written out: encode each text, normalise, average, renormalise."""
    rows = []
    with torch.no_grad():
        for texts in per_class_texts:
            e = enc.model.encode_text(enc.tokenizer(texts)).float()
            c = (e / e.norm(dim=-1, keepdim=True)).mean(0)
            rows.append(c / c.norm())
    return torch.stack(rows)


def test_cupl_per_class_prompts(fx, four, tmp_path):
    path, names = four
    cupl = {n: [f"a {n} seen from afar.", f"a close photo of the {n}."] for n in names}
    f = tmp_path / "cupl.json"
    f.write_text(json.dumps(cupl))
    m = create_model(fx["openclip"], classes=str(path), templates=str(f))
    assert isinstance(m.templates, ClassPrompts)
    assert torch.allclose(m.head, hand_head(m.encoder, [cupl[n] for n in names]), atol=1e-6)
    key = m.head_key
    cupl[names[2]].append("a third sentence.")
    f.write_text(json.dumps(cupl))
    assert create_model(fx["openclip"], classes=str(path), templates=str(f)).head_key != key
    del cupl[names[0]]
    f.write_text(json.dumps(cupl))
    with pytest.raises(RozError, match="no prompts for class 'tench'"):
        create_model(fx["openclip"], classes=str(path), templates=str(f))


def test_template_text_file_is_hashed(fx, four, tmp_path):
    path, names = four
    f = tmp_path / "templates.txt"
    f.write_text("a photo of a {c}.\na sketch of a {c}.\n")
    m = create_model(fx["openclip"], classes=str(path), templates=str(f))
    assert torch.allclose(m.head, hand_head(m.encoder, [[f"a photo of a {n}.", f"a sketch of a {n}."] for n in names]),
                          atol=1e-6)
    f.write_text("a photo of a {c}.\n")
    assert create_model(fx["openclip"], classes=str(path), templates=str(f)).head_key != m.head_key


def test_clip_benchmark_multilingual_json(fx, tmp_path):
    """<lang>_classnames.json and <lang>_zeroshot_classification_templates.json as CLIP_benchmark ships them."""
    names = [f"klasse {i}" for i in range(1000)]
    (tmp_path / "de_classnames.json").write_text(json.dumps({"imagenet1k": names, "cifar10": ["a"] * 10}))
    (tmp_path / "de_templates.json").write_text(json.dumps({"imagenet1k": ["ein Foto von {c}."],
                                                            "cifar10": ["ein Bild von {c}."]}))
    cs = get_class_set(str(tmp_path / "de_classnames.json"))
    assert cs.wnids == imagenet_1k().wnids and cs.names[5] == "klasse 5" and cs.name == "de_classnames#imagenet1k"
    with pytest.raises(DataError, match="only ImageNet-1k lists"):
        get_class_set(f"{tmp_path / 'de_classnames.json'}#cifar10")
    from roz.models.prompts import get_templates

    assert get_templates(str(tmp_path / "de_templates.json")) == ("ein Foto von {}.",)
    assert get_templates(f"{tmp_path / 'de_templates.json'}#cifar10") == ("ein Bild von {}.",)
    with pytest.raises(RozError, match="no entry 'svhn'"):
        get_templates(f"{tmp_path / 'de_templates.json'}#svhn")
    enc = create_model(fx["openclip"], templates="photo").encoder
    head = build_head(enc, cs.names[:3], get_templates(str(tmp_path / "de_templates.json")))
    assert torch.allclose(head, hand_head(enc, [[f"ein Foto von {n}."] for n in cs.names[:3]]), atol=1e-6)
