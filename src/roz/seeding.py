"""Per-sample seeds and generators, shared by shifts, attacks and the ROZ-Mini world build.

Each sample's seed is derived from the run seed and the sample's dataset index (plus a salt), so
a sample is transformed identically whatever its batch, shard, worker or machine.
"""

from __future__ import annotations

import hashlib

import torch


def sample_seed(run_seed: int, index: int, salt: str = "") -> int:
    """A 63-bit seed for one sample, stable across batches, shards, workers and machines."""
    h = hashlib.blake2b(f"{run_seed}:{index}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def sample_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
