"""The zero-shot head equals a hand computation; a cache hit equals a recomputation."""

import torch

from roz.models.adapters import create_model
from roz.models.zeroshot import build_head, cached_head, head_key
from roz.paths import cache_dir


def test_head_matches_hand_computation(fx):
    m = create_model(fx["openclip"], templates="simple")
    enc = m.encoder
    names = m.classes.names
    from open_clip.zero_shot_metadata import SIMPLE_IMAGENET_TEMPLATES

    rows = []
    with torch.no_grad():
        for n in names:
            # written out independently: tokenize each prompt, encode, normalise, average, renormalise
            tok = enc.tokenizer([t(n) for t in SIMPLE_IMAGENET_TEMPLATES])
            e = enc.model.encode_text(tok).float()
            e = e / e.norm(dim=-1, keepdim=True)
            c = e.mean(0)
            rows.append(c / c.norm())
    head = torch.stack(rows)
    assert torch.allclose(m.head, head, atol=1e-6)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        f = enc.model.encode_image(m.normalize(x)).float()
        f = f / f.norm(dim=-1, keepdim=True)
        expected = enc.model.logit_scale.exp() * f @ head.t()
    assert torch.allclose(m(x), expected, atol=1e-4)


def test_cache_hit_is_byte_identical(fx):
    m = create_model(fx["openclip"], templates="photo")
    again = create_model(fx["openclip"], templates="photo")
    assert again.head_cache_hit
    fresh = build_head(m.encoder, m.classes.names, m.templates)
    assert torch.equal(again.head, fresh)  # bit-for-bit
    key = head_key(m.identity, m.classes.names, m.templates)
    assert (cache_dir("heads") / f"{key}.pt").is_file()
    # a different template set is a different key
    assert key != head_key(m.identity, m.classes.names, ("a sketch of a {}.",))


def test_corrupt_cache_entry_is_rebuilt(fx):
    m = create_model(fx["openclip"], templates="photo")
    path = cache_dir("heads") / f"{m.head_key}.pt"
    path.write_bytes(b"garbage")
    head, _, hit = cached_head(m.encoder, m.identity, m.classes.names, m.templates)
    assert not hit and torch.equal(head, m.head)
