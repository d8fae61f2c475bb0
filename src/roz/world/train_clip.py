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


def train_clip(corpus_x: torch.Tensor, captions: list[str], *, tokenizer, epochs: int, seed: int = 0,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.1, warmup_frac: float = 0.05,
               decay_frac: float = 0.4,
               max_steps: int | None = None, log=print, eval_fn=None, eval_every: int = 0):
    """Contrastive training; returns (model, info) with the per-step loss history in info."""
    import open_clip

    torch.manual_seed(seed)
    model = create_clip()
    tokens = tokenizer(captions)  # N x 32 (truncated by open_clip)
    n = len(captions)
    bs = min(batch_size, n)
    steps_per_epoch = max(1, n // bs)  # drop last: ClipLoss wants full batches of negatives
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
        perm = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[b * bs:(b + 1) * bs]
            x = train_common.augment(train_common.to_float(corpus_x[idx]), gen, flip=False)
            x = train_common.normalize(x, train_common.CLIP_MEAN, train_common.CLIP_STD)
            for g in opt.param_groups:
                g["lr"] = train_common.wsd_lr(step, total, lr, warm, decay_frac)
            img_f, txt_f, scale = model(x, tokens[idx])[:3]
            loss = loss_fn(img_f, txt_f, scale)
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
            if eval_fn is not None and eval_every and step % eval_every == 0:
                evals.append((step, eval_fn(model)))
                log(f"[clip] eval @ {step}: {evals[-1][1]}")
                model.train()
    model.eval()
    spe = steps_per_epoch
    curve = [round(sum(losses[i:i + spe]) / len(losses[i:i + spe]), 4) for i in range(0, len(losses), spe)]
    info = {"loss_curve": curve, "steps": total, "steps_per_epoch": steps_per_epoch, "batch_size": bs, "lr": lr,
            "schedule": f"warmup {warmup_frac:g}, constant, cosine over the last {decay_frac:g}",
            "weight_decay": weight_decay, "losses": losses, "evals": evals, "train_seconds": time.time() - t0}
    return model, info
