"""APGD-CE / APGD-DLR and APGD-T (Croce & Hein 2020), L-inf, ported from the auto-attack reference.

Faithful to ``autoattack/autopgd_base.py``: random start x + eps * t / ||t||_inf,
t ~ U[-1, 1]; step size 2 eps; momentum 0.75 (1 at the first step); checkpoints every k
iterations with k = 0.22 n_iter shrinking by 0.03 n_iter down to 0.06 n_iter; at a checkpoint
the step is halved and the iterate reset to the best point where the loss rose in at most
rho = 0.75 of the last k steps, or where the best loss did not improve since the previous
checkpoint without a reduction there. A sample counts as fooled at the first iterate it is
misclassified (the reference keeps iterating it but its outcome cannot change; here it is
dropped from the batch: early stopping, identical robust accuracy).
APGD-T: for each of the ``n_target_classes`` (9) most likely other classes on the clean input,
targeted DLR loss, on points still robust.
Difference from the reference: random starts come from (seed, sample index, restart) instead
of one global generator, so batched == per-sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from roz.attacks.base import Attack, dlr_loss, per_sample_rand
from roz.errors import RozError


def dlr_targeted_loss(logits, y, yt):
    srt, _ = logits.sort(1)
    zy = logits.gather(1, y[:, None])[:, 0]
    zt = logits.gather(1, yt[:, None])[:, 0]
    return -(zy - zt) / (srt[:, -1] - 0.5 * (srt[:, -3] + srt[:, -4]) + 1e-12)


class APGD(Attack):
    name = "apgd-ce"
    randomized = True
    defaults = {"steps": 100, "restarts": 1, "loss": "ce", "rho": 0.75}

    def validate(self) -> None:
        self._need("steps", isinstance(self.p["steps"], int) and self.p["steps"] >= 1, "int >= 1")
        self._need("restarts", isinstance(self.p["restarts"], int) and self.p["restarts"] >= 1, "int >= 1")
        self._need("loss", self.p["loss"] in ("ce", "dlr"), "one of 'ce', 'dlr'")
        self._need("rho", 0 < float(self.p["rho"]) <= 1, "in (0, 1]")

    def loss_fn(self, y, yt=None):
        if yt is not None:
            return lambda z: dlr_targeted_loss(z, y, yt)
        if self.p.get("loss", "ce") == "dlr":
            return lambda z: dlr_loss(z, y)
        return lambda z: F.cross_entropy(z, y, reduction="none")

    def run(self, x, y, idx, e, rows, salt, yt=None):
        """One APGD run on the given samples; returns (x_best_adv, fooled [cpu bool])."""
        n_iter = int(self.p["steps"])
        n2, nmin, sdecr = max(int(0.22 * n_iter), 1), max(int(0.06 * n_iter), 1), max(int(0.03 * n_iter), 1)
        B, dev = x.shape[0], x.device
        t = per_sample_rand(x.shape[1:], self.seeds(idx, salt), "uniform", dev) * 2 - 1
        x_adv = self.project(x + e * t / t.flatten(1).abs().amax(1).clamp_min(1e-12)[:, None, None, None], x, e)
        lf = self.loss_fn(y, yt)
        logits, grad = self.loss_grad(x_adv, lf)
        self.count(rows)
        loss = lf(logits)
        fooled = (logits.argmax(1) != y).cpu()
        x_best_adv = x_adv.clone()
        x_best, grad_best, loss_best = x_adv.clone(), grad.clone(), loss.clone()
        step = 2 * e.clone()
        x_old = x_adv.clone()
        loss_steps = torch.zeros(n_iter, B, device=dev)
        k, counter3 = n2, 0
        loss_best_last = loss_best.clone()
        reduced_last = torch.ones(B, dtype=torch.bool, device=dev)
        rho = float(self.p["rho"])
        for i in range(n_iter):
            act = (~fooled).nonzero()[:, 0]
            if act.numel() == 0:
                break
            a_ = act.to(dev)
            xa, xo, xc, ea = x_adv[a_], x_old[a_], x[a_], e[a_]
            mom = 0.75 if i > 0 else 1.0
            z = self.project(xa + step[a_] * grad[a_].sign(), xc, ea)
            xn = self.project(xa + (z - xa) * mom + (xa - xo) * (1 - mom), xc, ea)
            x_old[a_] = xa
            x_adv[a_] = xn
            lf_a = self.loss_fn(y[a_], None if yt is None else yt[a_])
            logits, g = self.loss_grad(xn, lf_a)
            self.count(rows[act])
            grad[a_] = g
            la = lf_a(logits)
            now = (logits.argmax(1) != y[a_]).cpu()
            if now.any():
                x_best_adv[a_[now.to(dev)]] = xn[now.to(dev)]
                fooled[act[now]] = True
            loss_steps[i, a_] = la
            imp = la > loss_best[a_]
            ii = a_[imp]
            x_best[ii], grad_best[ii], loss_best[ii] = xn[imp], g[imp], la[imp]
            counter3 += 1
            if counter3 == k:
                incr = torch.zeros(B, device=dev)
                for c in range(k):
                    incr += (loss_steps[i - c] > loss_steps[i - c - 1]).float()
                osc = incr <= k * rho
                no_impr = (~reduced_last) & (loss_best_last >= loss_best)
                red = osc | no_impr
                reduced_last = red.clone()
                loss_best_last = loss_best.clone()
                step[red] /= 2.0
                x_adv[red] = x_best[red]
                grad[red] = grad_best[red]
                counter3 = 0
                k = max(k - sdecr, nmin)
        return x_best_adv, fooled

    def _perturb(self, x, y, idx, e, eps_nominal):
        out = x.clone()
        todo = (self.logits(x).argmax(1) == y).cpu().nonzero()[:, 0]
        self.count(None)
        for r in range(int(self.p["restarts"])):
            if todo.numel() == 0:
                break
            d = todo.to(x.device)
            adv, fooled = self.run(x[d], y[d], idx[todo], e[d], todo, f"r{r}")
            out[d[fooled.to(x.device)]] = adv[fooled.to(x.device)]
            todo = todo[~fooled]
        return out


class APGDT(APGD):
    name = "apgd-t"
    defaults = {"steps": 100, "restarts": 1, "n_target_classes": 9, "rho": 0.75}

    def validate(self) -> None:
        self._need("steps", isinstance(self.p["steps"], int) and self.p["steps"] >= 1, "int >= 1")
        self._need("restarts", isinstance(self.p["restarts"], int) and self.p["restarts"] >= 1, "int >= 1")
        self._need("n_target_classes", isinstance(self.p["n_target_classes"], int) and self.p["n_target_classes"] >= 1,
                   "int >= 1")

    def _perturb(self, x, y, idx, e, eps_nominal):
        out = x.clone()
        clean = self.logits(x)
        self.count(None)
        C = clean.shape[1]
        if C < 4:
            raise RozError(f"attack '{self.name}': the targeted DLR loss needs >= 4 classes, the model has {C}",
                           hint="use apgd-ce or pgd for models with fewer classes")
        n_t = min(int(self.p["n_target_classes"]), C - 1)
        order = clean.argsort(1)
        todo = (clean.argmax(1) == y).cpu().nonzero()[:, 0]
        for tc in range(2, n_t + 2):
            for r in range(int(self.p["restarts"])):
                if todo.numel() == 0:
                    return out
                d = todo.to(x.device)
                yt = order[d, -tc]
                adv, fooled = self.run(x[d], y[d], idx[todo], e[d], todo, f"t{tc}r{r}", yt=yt)
                out[d[fooled.to(x.device)]] = adv[fooled.to(x.device)]
                todo = todo[~fooled]
        return out

    def resolved(self) -> dict:
        return {"targets": "the n_target_classes most likely other classes on the clean input"}

    def loss_name(self) -> str:
        return "targeted-dlr"
