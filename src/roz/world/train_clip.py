"""Train ``roz-mini-clip``: a tiny open_clip CLIP, contrastively, on the ROZ-Mini corpus.

The model is built from the open_clip config ``src/roz/models/configs/roz-mini-clip.json``
(registered here with ``open_clip.add_model_config``), tokenised by open_clip's SimpleTokenizer
(context 24) on a compact vocabulary -- the merges of open_clip's BPE file that the world's
captions and prompt templates use (:func:`roz.models.bpe.build_compact_bpe`, written beside the
checkpoint as :data:`BPE_FILE` and named in its sidecar) -- and
trained with open_clip's own ``ClipLoss``, AdamW and a warmup-stable-decay schedule. Pixels are fed
in [0, 1] and normalised with CLIP's mean/std, as the sidecar says.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from roz.world import train_common

CLIP_ARCH = "roz-mini-clip"
CONFIG_DIR = Path(__file__).parents[1] / "models" / "configs"
BPE_FILE = f"{CLIP_ARCH}.bpe.txt.gz"

# Templates used to build zero-shot heads on mini-val: "photo" (one template), "roz" (a short
# emoji-world set), and CLIP's own from open_clip: the 7 "simple" ones and the 80 OpenAI ones.
# All four are named template sets of roz.models.prompts (get_templates("roz") is the same set).


def template_sets() -> dict[str, tuple[str, ...]]:
    """Template sets (format strings with one ``{}``), named as :mod:`roz.models.prompts` does."""
    from roz.models.prompts import get_templates

    return {"photo": get_templates("photo"), "roz": get_templates("roz"), "simple": get_templates("simple"),
            "openai-80": get_templates("openai-80")}


# The set the model adapter uses by default for open_clip models (and the sidecar names).
PRIMARY_TEMPLATES = "openai-80"


def register_config() -> None:
    import open_clip

    if CLIP_ARCH not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def create_clip() -> torch.nn.Module:
    import logging

    import open_clip

    register_config()
    lg = logging.getLogger()
    old = lg.level
    lg.setLevel(logging.ERROR)  # silence "No pretrained weights loaded" (intended)
    try:
        return open_clip.create_model(CLIP_ARCH)
    finally:
        lg.setLevel(old)


def vocabulary_texts() -> list[str]:
    """The texts the compact vocabulary covers: every caption the corpus can write and every
    named template set over ROZ-Mini's class names (a word outside them still encodes, in
    smaller pieces)."""
    from roz.world import splits
    from roz.world.concepts import roz_mini

    names = list(roz_mini().names)
    texts = splits.caption_texts(names)
    for tmpl in template_sets().values():
        texts += [t.format(n) for t in tmpl for n in names]
    return texts


def config_vocab_size() -> int:
    import json

    return int(json.loads((CONFIG_DIR / f"{CLIP_ARCH}.json").read_text())["text_cfg"]["vocab_size"])


def build_tokenizer(out_dir: str | Path) -> tuple[object, dict]:
    """Write the compact vocabulary to ``out_dir/BPE_FILE``; the tokenizer and its sidecar record."""
    from roz.errors import DataError
    from roz.models.bpe import build_compact_bpe

    rec = build_compact_bpe(vocabulary_texts(), Path(out_dir) / BPE_FILE)
    if rec["vocab_size"] != config_vocab_size():
        raise DataError(f"the world's compact vocabulary has {rec['vocab_size']} tokens but {CLIP_ARCH}.json says "
                        f"vocab_size {config_vocab_size()}",
                        hint=f"the captions or templates changed: set text_cfg.vocab_size to {rec['vocab_size']} in "
                             f"{CONFIG_DIR / (CLIP_ARCH + '.json')} and retrain")
    return get_tokenizer(Path(out_dir) / BPE_FILE), rec


def get_tokenizer(bpe_path: str | Path):
    """The tokenizer of a trained ``roz-mini-clip`` (its compact vocabulary file)."""
    from roz.models.bpe import load_tokenizer

    register_config()
    return load_tokenizer(CLIP_ARCH, bpe_path)


@torch.no_grad()
def zero_shot_head(model, tokenizer, names: list[str], templates: list) -> torch.Tensor:
    """C x D unit-norm class embeddings: mean of the normalised template embeddings."""
    model.eval()
    rows = []
    for n in names:
        tok = tokenizer([t.format(n) for t in templates])
        e = model.encode_text(tok, normalize=True).mean(0)
        rows.append(e / e.norm())
    return torch.stack(rows)


@torch.no_grad()
def encode_images(model, x_u8: torch.Tensor, bs: int = 256) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, len(x_u8), bs):
        x = train_common.normalize(train_common.to_float(x_u8[i:i + bs]), train_common.CLIP_MEAN, train_common.CLIP_STD)
        out.append(model.encode_image(x, normalize=True))
    return torch.cat(out)


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, names, x_u8, y, templates=None) -> dict[str, float]:
    """mini-val top-1 (%) of zero-shot heads for each template set."""
    sets = template_sets()
    if templates is not None:
        sets = {k: sets[k] for k in templates}
    feats = encode_images(model, x_u8)
    res = {}
    for k, tmpl in sets.items():
        head = zero_shot_head(model, tokenizer, names, tmpl)
        res[k] = round(100.0 * (feats @ head.T).argmax(1).eq(y).float().mean().item(), 2)
    return res


@torch.no_grad()
def reading_accuracy(model, tokenizer, names, x_u8, y, templates: str = PRIMARY_TEMPLATES, seed: int = 0) -> float:
    """Top-1 (%) on word cards (:class:`roz.shifts.word_cards.WordCards`, held-out fonts) made from
    these samples' labels: the same probe the engine's ``word-cards`` units run."""
    from roz.shifts.word_cards import WordCards

    cards, _, ok = WordCards(list(names)).apply_with_labels(
        train_common.to_float(x_u8), torch.arange(len(y)) + 1_000_003 * seed, y)
    cards_u8 = (cards[ok] * 255).round().to(torch.uint8)
    return zero_shot_accuracy(model, tokenizer, names, cards_u8, y[ok], templates=[templates])[templates]


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens, normalize=True)`` computed on the tokens up to the batch's
    longest text instead of the full context.

    open_clip's ``CLIP.encode_text`` always runs the whole context (24 here); the world's captions
    average 9 tokens and a batch's longest is about 16, so this is a third cheaper. The text
    transformer is causal and pools at the end-of-text token, so the padding after it never
    reaches the output: the result is the same up to float rounding (tested). open_clip has no
    option for it, hence these lines, which call the model's own modules in ``encode_text``'s
    order."""
    from open_clip.transformer import text_global_pool

    n = int((tokens != 0).any(0).nonzero().max()) + 1 if tokens.numel() else 1
    t = tokens[:, :n]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(t).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = text_global_pool(x, t, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return torch.nn.functional.normalize(x, dim=-1)


def _n_drawn(n: int, fraction: float) -> int:
    """How many of a group's ``n`` pairs one epoch draws."""
    return min(n, round(fraction * n))


def epoch_indices(groups: dict[str, torch.Tensor], fractions: dict[str, float], gen: torch.Generator) -> torch.Tensor:
    """One epoch's order: every pair of each group, except groups named in ``fractions``, of
    which a fresh random ``fraction`` is drawn each epoch; shuffled together."""
    parts = []
    for k in sorted(groups):
        g = groups[k]
        m = _n_drawn(len(g), fractions.get(k, 1.0))
        parts.append(g[torch.randperm(len(g), generator=gen)[:m]] if m < len(g) else g)
    pool = torch.cat(parts)
    return pool[torch.randperm(len(pool), generator=gen)]


def train_clip(corpus_x: torch.Tensor, captions: list[str], *, tokenizer, epochs: int, seed: int = 0,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.1, warmup_frac: float = 0.05,
               decay_frac: float = 0.4, bf16: bool = True, kinds: list[str] | None = None,
               kind_fractions: dict[str, float] | None = None,
               max_steps: int | None = None, log=print, eval_fn=None, eval_every_epochs: int = 0):
    """Contrastive training; returns (model, info) with the per-step loss history in info.

    ``kinds`` (one label per pair, e.g. the corpus records' ``kind``) and ``kind_fractions``
    (e.g. ``{"object": 0.5}``) draw only that fraction of a kind's pairs in each epoch (a fresh
    draw every epoch); the other kinds are drawn in full. ``eval_fn(model)`` runs every
    ``eval_every_epochs`` epochs (its results in ``info["evals"]``)."""
    import open_clip

    torch.manual_seed(seed)
    # The image tower runs in channels_last under bfloat16 autocast (weights and AdamW state stay
    # float32); the text tower in float32 on trimmed tokens (bf16 does not speed up its short
    # matmuls). About 1.7x faster steps than plain float32 on a 2-core AVX-512 CPU
    # (bench/world_clip_step.py).
    model = create_clip().to(memory_format=torch.channels_last)
    tokens = tokenizer(captions)  # N x context (truncated by open_clip)
    n = len(captions)
    kinds = list(kinds) if kinds is not None else ["all"] * n
    if len(kinds) != n:
        raise ValueError(f"{len(kinds)} kinds for {n} captions")
    groups = {k: torch.tensor([i for i, kk in enumerate(kinds) if kk == k]) for k in sorted(set(kinds))}
    fractions = dict(kind_fractions or {})
    n_epoch = sum(_n_drawn(len(g), fractions.get(k, 1.0)) for k, g in groups.items())
    bs = min(batch_size, n_epoch)
    steps_per_epoch = max(1, n_epoch // bs)  # drop last: ClipLoss wants full batches of negatives
    total = steps_per_epoch * epochs
    if max_steps is not None:
        total = min(total, max_steps)
    opt = torch.optim.AdamW(train_common.param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.ClipLoss()
    gen = torch.Generator().manual_seed(seed)
    warm = max(1, int(warmup_frac * total))
    losses, evals = [], []
    t0 = time.time()
    step = 0
    model.train()
    while step < total:
        perm = epoch_indices(groups, fractions, gen)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[b * bs:(b + 1) * bs]
            x = train_common.augment(train_common.to_float(corpus_x[idx]), gen, flip=False)
            x = train_common.normalize(x, train_common.CLIP_MEAN, train_common.CLIP_STD)
            x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = train_common.wsd_lr(step, total, lr, warm, decay_frac)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                img_f = model.encode_image(x, normalize=True)
            txt_f = encode_text_trimmed(model, tokens[idx])
            loss = loss_fn(img_f.float(), txt_f, model.logit_scale.exp())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, 4.6052)  # ln(100), as open_clip's trainer does
            losses.append(loss.item())
            step += 1
            if step % max(1, steps_per_epoch) == 0 or step == total:
                log(f"[clip] step {step}/{total} epoch {step / steps_per_epoch:.2f} "
                    f"loss {sum(losses[-steps_per_epoch:]) / len(losses[-steps_per_epoch:]):.3f} "
                    f"scale {model.logit_scale.exp().item():.1f} {time.time() - t0:.0f}s")
            if eval_fn is not None and eval_every_epochs and step % (eval_every_epochs * steps_per_epoch) == 0:
                evals.append((step, eval_fn(model)))
                log(f"[clip] eval @ {step}: {evals[-1][1]}")
                model.train()
    model.eval()
    model = model.to(memory_format=torch.contiguous_format)
    spe = steps_per_epoch
    curve = [round(sum(losses[i:i + spe]) / len(losses[i:i + spe]), 4) for i in range(0, len(losses), spe)]
    info = {"loss_curve": curve, "steps": total, "steps_per_epoch": steps_per_epoch, "batch_size": bs, "lr": lr,
            "schedule": f"warmup {warmup_frac:g}, constant, cosine over the last {decay_frac:g}",
            "weight_decay": weight_decay,
            "precision": "image tower bfloat16 autocast, text tower float32" if bf16 else "float32",
            "pairs_per_epoch": n_epoch, "kind_fractions": fractions, "losses": losses, "evals": evals,
            "train_seconds": time.time() - t0}
    return model, info
