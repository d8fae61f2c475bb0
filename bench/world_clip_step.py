"""Training-step speed of ``roz-mini-clip``: plain float32 vs the recipe ``train_clip`` uses.

``roz.world.train_clip.train_clip`` runs the image tower in channels_last memory format under
bfloat16 autocast and the text tower in float32 on tokens trimmed to the batch's longest caption
(``encode_text_trimmed``); weights and AdamW state stay float32. This times one full training
step (forward, open_clip ``ClipLoss``, backward, AdamW) of the shipped config on a batch of real
world captions (random images) in each mode, in the same process, interleaved, and prints
medians and ratios against plain float32 (``model(x, tokens)`` on the full context).

    .venv/bin/python bench/world_clip_step.py [--batch 128] [--repeats 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time

import open_clip
import torch

from roz.world import splits, train_clip
from roz.world.concepts import roz_mini
from roz.world.train import SHIPPED_DIR


def make_step(base, x, tokens, mode: str):
    """One training step in ``mode`` on its own copy of ``base`` (and its own AdamW)."""
    fmt = torch.contiguous_format if mode == "float32" else torch.channels_last
    model = copy.deepcopy(base).to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    loss_fn = open_clip.ClipLoss()
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def step():
        if mode == "float32":
            a, b, s = model(x, tokens)[:3]
        elif mode == "channels_last+bf16 (both towers)":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                a, b, s = model(x_cl, tokens)[:3]
        else:  # what train_clip does
            with torch.autocast("cpu", dtype=torch.bfloat16):
                a = model.encode_image(x_cl, normalize=True)
            b, s = train_clip.encode_text_trimmed(model, tokens), model.logit_scale.exp()
        loss = loss_fn(a.float(), b.float(), s.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = train_clip.create_clip().train()
    tok = train_clip.get_tokenizer(SHIPPED_DIR / train_clip.BPE_FILE)
    texts = splits.caption_texts(list(roz_mini().names))
    tokens = tok(random.Random(0).sample(texts, a.batch))
    x = torch.rand(a.batch, 3, 64, 64)
    modes = ["float32", "channels_last+bf16 (both towers)", "train_clip (image bf16, text trimmed)"]
    steps = {m: make_step(model, x, tokens, m) for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(a.repeats + 2):  # interleaved; the first two rounds warm up
        for m in modes:
            t0 = time.perf_counter()
            steps[m]()
            if r >= 2:
                times[m].append(time.perf_counter() - t0)
    med = {m: statistics.median(t) for m, t in times.items()}
    n_tok = int((tokens != 0).any(0).nonzero().max()) + 1
    bf16_hw = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: None)()
    print(f"batch {a.batch}, threads {a.threads}, longest caption {n_tok} of {tokens.shape[1]} tokens, "
          f"torch {torch.__version__}, CPU bf16 instructions: {bf16_hw}")
    for m in modes:
        print(f"{m:40s} {med[m] * 1000:7.1f} ms/step  speed-up x{med['float32'] / med[m]:.2f}")


if __name__ == "__main__":
    main()
