"""AutoPrompt (Shin et al. 2020) for CLIP zero-shot heads: a discrete search for trigger tokens.

A prompt is ``[SOT] t_1 … t_K <class name> <suffix> [EOT]`` with K trigger tokens shared by all
classes. The search minimises the zero-shot cross-entropy of the few-shot set's (frozen, cached)
image features against the class prompts' text features:

* each step picks one trigger position (seeded, uniformly, as AutoPrompt does), takes the gradient
  of the loss on a fixed mini-batch with respect to the triggers' one-hot token vectors, and ranks
  every vocabulary token by the first-order (HotFlip) estimate of the loss after swapping it in;
* the top ``candidates`` tokens are evaluated exactly, in batches (``candidates × classes`` text
  sequences per forward pass), and the best replaces the current token if it lowers the loss;
* the class-name / suffix token blocks are tokenised once, and sequences are cut after the longest
  EOT (the causal mask makes the padding irrelevant), so a step costs one forward+backward and
  ``candidates`` forwards of ``classes`` short sequences.

Several seeded runs (different initial triggers and mini-batches) give candidate prompts; they are
ranked by their loss on the whole few-shot set, the top ``top_k`` kept, and "a photo of a {}." is
always added to the ensemble (the head averages the normalised embeddings of every prompt, CLIP's
recipe). Prompts are kept and evaluated as token ids; their decoded text is only a label.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from roz.errors import RozError
from roz.models.prompt_text import TextTower

PHOTO = ("a photo of a", ".")  # "a photo of a {}." as (prefix, suffix) text


@dataclass
class AutoPromptConfig:
    n_trigger: int = 4  # K trigger tokens before the class name (the default)
    candidates: int = 16  # c: tokens evaluated per step (top of the HotFlip ranking)
    steps: int = 40  # search steps per run
    runs: int = 4  # seeded runs
    top_k: int = 3  # prompts kept from the ranked runs (+ "a photo of a {}.")
    batch_size: int = 256  # the fixed mini-batch of few-shot images each run searches on
    suffix: str = "."  # text after the class name
    eval_chunk: int = 4096  # text sequences per forward pass when evaluating candidates


class _Problem:
    """Class-name blocks and few-shot features: the fixed parts of every loss evaluation."""

    def __init__(self, tower: TextTower, class_names, n_trigger: int, suffix: str):
        self.tower = tower
        self.k = n_trigger
        if n_trigger < 1 or n_trigger + 3 > tower.context_length:
            raise RozError(f"n_trigger={n_trigger} does not fit the context length {tower.context_length}",
                           hint="use 1 to context_length - 3 trigger tokens")
        self.suffix_ids = tower.token_ids(suffix) if suffix else []
        names = [tower.token_ids(n) for n in class_names]
        rows = [tower.sequence([tower.pad] * n_trigger, n, self.suffix_ids) for n in names]
        ids = torch.tensor(rows, dtype=torch.long)
        self.eot = (ids == tower.eot).int().argmax(dim=1)
        self.ids = ids[:, :int(self.eot.max()) + 1].to(tower.device)  # cut after the longest EOT
        self.scale = tower.logit_scale()
        banned = torch.zeros(tower.embeddings.shape[0], dtype=torch.bool)
        banned[[tower.sot, tower.eot]] = True
        banned[tower.vocab_size:] = True  # embedding rows the tokenizer has no token for (a compact vocabulary)
        self.banned = banned.to(tower.device)

    def text_features(self, triggers: torch.Tensor) -> torch.Tensor:
        """``[P, C, E]`` unit-norm text features for ``P`` trigger sets ``[P, K]``."""
        p, c = triggers.shape[0], self.ids.shape[0]
        ids = self.ids.unsqueeze(0).repeat(p, 1, 1)
        ids[:, :, 1:1 + self.k] = triggers.to(ids.device)[:, None, :]
        emb = self.tower.embeddings[ids.flatten(0, 1)]
        f = self.tower.encode_embeds(emb, self.eot.repeat(p)).float()
        return F.normalize(f, dim=-1).view(p, c, -1)

    def losses(self, triggers: torch.Tensor, feats: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        """Mean cross-entropy of each trigger set ``[P, K]`` on (feats, targets), no gradient."""
        per = max(1, chunk // self.ids.shape[0])
        out = []
        with torch.no_grad():
            for i in range(0, triggers.shape[0], per):
                text = self.text_features(triggers[i:i + per])
                logits = self.scale * torch.einsum("ne,pce->pnc", feats, text)
                out.append(F.cross_entropy(logits.flatten(0, 1), targets.repeat(text.shape[0]),
                                           reduction="none").view(text.shape[0], -1).mean(1))
        return torch.cat(out)

    def flip_scores(self, triggers: torch.Tensor, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[K, V]`` first-order loss change of putting token v at trigger position k (HotFlip):
        the gradient with respect to the one-hot vectors, ``∂L/∂e_k · E[v]``."""
        table = self.tower.embeddings
        onehot = F.one_hot(triggers.to(table.device), table.shape[0]).to(table.dtype).requires_grad_(True)
        trig = onehot @ table.detach()  # [K, D]
        base = table.detach()[self.ids]  # [C, L, D]
        emb = torch.cat([base[:, :1], trig.unsqueeze(0).expand(base.shape[0], -1, -1), base[:, 1 + self.k:]], dim=1)
        text = F.normalize(self.tower.encode_embeds(emb, self.eot).float(), dim=-1)
        loss = F.cross_entropy(self.scale * feats @ text.t(), targets)
        (grad,) = torch.autograd.grad(loss, onehot)
        return grad


def search(tower: TextTower, class_names, feats: torch.Tensor, targets: torch.Tensor, cfg: AutoPromptConfig,
           seed: int, log=None) -> dict:
    """Run ``cfg.runs`` seeded searches; returns the ranked prompts and the search record."""
    prob = _Problem(tower, class_names, cfg.n_trigger, cfg.suffix)
    feats, targets = feats.to(tower.device), targets.to(tower.device)
    found, times = [], []
    for run in range(cfg.runs):
        triggers, loss, secs = _one_run(prob, feats, targets, cfg, seed * 1000 + run)
        times += secs
        found.append({"run": run, "triggers": triggers, "batch_loss": loss})
        if log:
            log(f"autoprompt run {run}: {tower.decode(triggers)!r} batch loss {loss:.4f}")
    full = prob.losses(torch.tensor([f["triggers"] for f in found]), feats, targets, cfg.eval_chunk)
    for f, full_loss in zip(found, full.tolist()):
        f["loss"] = full_loss
    ranked = sorted(found, key=lambda f: (f["loss"], f["run"]))
    return {"ranked": ranked, "suffix_ids": prob.suffix_ids, "seconds_per_step": float(np.median(times)) if times else 0.0,
            "steps_timed": len(times), "config": asdict(cfg)}


def _one_run(prob: _Problem, feats, targets, cfg: AutoPromptConfig, seed: int) -> tuple[list[int], float, list[float]]:
    rng = np.random.default_rng(seed)
    allowed = np.flatnonzero(~prob.banned.cpu().numpy())
    triggers = torch.tensor(rng.choice(allowed, size=cfg.n_trigger, replace=True), dtype=torch.long)
    pick = np.sort(rng.choice(len(feats), size=min(cfg.batch_size, len(feats)), replace=False))
    bf, bt = feats[torch.as_tensor(pick, device=feats.device)], targets[torch.as_tensor(pick, device=feats.device)]
    current = float(prob.losses(triggers[None], bf, bt, cfg.eval_chunk)[0])
    secs = []
    for _ in range(cfg.steps):
        t0 = time.perf_counter()
        pos = int(rng.integers(cfg.n_trigger))
        score = prob.flip_scores(triggers, bf, bt)[pos].detach().clone()
        score[prob.banned] = float("inf")
        score[int(triggers[pos])] = float("inf")
        cand = torch.topk(-score, min(cfg.candidates, len(allowed) - 1)).indices.cpu()  # never a banned id
        sets = triggers.repeat(len(cand), 1)
        sets[:, pos] = cand
        losses = prob.losses(sets, bf, bt, cfg.eval_chunk)
        best = int(torch.argmin(losses))
        if float(losses[best]) < current:
            triggers, current = sets[best].clone(), float(losses[best])
        secs.append(time.perf_counter() - t0)
    return [int(t) for t in triggers], current, secs
