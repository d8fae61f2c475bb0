"""CoOp (Zhou et al. 2022, "Learning to Prompt for Vision-Language Models"): continuous context.

A class prompt is ``[SOT] v_1 … v_M <class name tokens> . [EOT]`` where ``v_i`` are learned vectors in
the token-embedding space (``M`` = 16 by default, CoOp's). ``class_specific=False`` shares them across
classes (CoOp's "unified context"); ``True`` learns ``M`` vectors per class (CoOp's CSC). The class
name sits at the end ("end" position, CoOp's default). Everything else is frozen; the loss is the
zero-shot cross-entropy of the few-shot set's cached image features, as in CoOp (logit scale from
the model). Optimiser: SGD (momentum 0.9), cosine learning-rate decay, CoOp's defaults
(lr 0.002, batch 32); vectors initialised from N(0, 0.02²), seeded, or (``init``, CoOp's
``ctx_init``) from the token embeddings of a phrase such as "a photo of a".
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from roz.errors import RozError
from roz.models.prompt_text import TextTower


@dataclass
class CoOpConfig:
    n_ctx: int = 16  # M context vectors
    class_specific: bool = False  # CoOp's CSC variant
    epochs: int = 50
    batch_size: int = 32
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    init_std: float = 0.02
    init: str = ""  # CoOp's ctx_init: start from these words' token embeddings (their count must be n_ctx)
    suffix: str = "."


class ContextPrompts:
    """Class prompts with learned context: ``[SOT] ctx name suffix [EOT] pad``, cut after the longest EOT."""

    def __init__(self, tower: TextTower, class_names, n_ctx: int, suffix: str = "."):
        if n_ctx < 1 or n_ctx + 3 > tower.context_length:
            raise RozError(f"n_ctx={n_ctx} does not fit the context length {tower.context_length}",
                           hint="use 1 to context_length - 3 context vectors")
        self.tower, self.n_ctx = tower, n_ctx
        suffix_ids = tower.token_ids(suffix) if suffix else []
        rows = [tower.sequence([tower.pad] * n_ctx, tower.token_ids(n), suffix_ids) for n in class_names]
        ids = torch.tensor(rows, dtype=torch.long, device=tower.device)
        self.eot = (ids == tower.eot).int().argmax(dim=1)
        self.ids = ids[:, :int(self.eot.max()) + 1]  # cut after the longest EOT (causal mask: same features)

    def features(self, ctx: torch.Tensor) -> torch.Tensor:
        """``[C, E]`` unit-norm text features; ``ctx`` is ``[M, D]`` (shared) or ``[C, M, D]``."""
        base = self.tower.embeddings.detach()[self.ids]
        c = base.shape[0]
        ctx = ctx.to(base.dtype)
        ctx = ctx.unsqueeze(0).expand(c, -1, -1) if ctx.dim() == 2 else ctx
        if ctx.shape[0] != c:
            raise RozError(f"class-specific context has {ctx.shape[0]} rows for {c} classes")
        emb = torch.cat([base[:, :1], ctx, base[:, 1 + self.n_ctx:]], dim=1)
        return F.normalize(self.tower.encode_embeds(emb, self.eot).float(), dim=-1)


def train(tower: TextTower, class_names, feats: torch.Tensor, targets: torch.Tensor, cfg: CoOpConfig, seed: int,
          log=None) -> tuple[torch.Tensor, dict]:
    """Learn the context; returns (ctx tensor, record with the per-epoch loss curve)."""
    prompts = ContextPrompts(tower, class_names, cfg.n_ctx, cfg.suffix)
    gen = torch.Generator().manual_seed(seed)
    dim = tower.embeddings.shape[1]
    shape = (len(class_names), cfg.n_ctx, dim) if cfg.class_specific else (cfg.n_ctx, dim)
    ctx = _initial_context(tower, cfg, shape, gen).to(tower.device).requires_grad_(True)
    for p in tower.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD([ctx], lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    n = len(feats)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    feats, targets = feats.to(tower.device), targets.to(tower.device)
    scale = tower.logit_scale()
    curve, secs = [], []
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen).to(tower.device)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            t0 = time.perf_counter()
            b = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(scale * feats[b] @ prompts.features(ctx).t(), targets[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
            secs.append(time.perf_counter() - t0)
        curve.append(round(total / n, 5))
        if log and (epoch % 10 == 0 or epoch == cfg.epochs - 1):
            log(f"coop epoch {epoch + 1}/{cfg.epochs}: loss {curve[-1]:.4f}")
    secs.sort()
    record = {"config": asdict(cfg), "loss_curve": curve, "steps": len(secs),
              "seconds_per_step": secs[len(secs) // 2] if secs else 0.0}
    return ctx.detach().cpu().contiguous(), record


def _initial_context(tower: TextTower, cfg: CoOpConfig, shape: tuple, gen: torch.Generator) -> torch.Tensor:
    if not cfg.init:
        return torch.randn(shape, generator=gen) * cfg.init_std
    ids = tower.token_ids(cfg.init)
    if len(ids) != cfg.n_ctx:
        raise RozError(f"coop init {cfg.init!r} is {len(ids)} tokens but n_ctx={cfg.n_ctx}",
                       hint=f"pass n_ctx={len(ids)} with this init")
    words = tower.embeddings.detach()[torch.tensor(ids, device=tower.device)].float().cpu()
    return words.expand(shape).clone()
