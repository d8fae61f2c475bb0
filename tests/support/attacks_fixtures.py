"""A tiny CNN trained in seconds on synthetic 3x16x16 images, shared by the attack tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLASSES = 10


class TinyNet(nn.Module):
    """Model contract: pixels [B, 3, H, W] in [0, 1] -> logits; normalises inside."""

    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    input_size = (16, 16)
    wnids = tuple(f"n{k:08d}" for k in range(N_CLASSES))  # declared classes (transfer label checks)

    def __init__(self, n_classes: int = N_CLASSES):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, n_classes)
        self.register_buffer("m", torch.tensor(self.mean)[None, :, None, None])
        self.register_buffer("s", torch.tensor(self.std)[None, :, None, None])

    def forward(self, x):
        x = (x - self.m) / self.s
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.adaptive_avg_pool2d(F.max_pool2d(F.relu(self.c2(x)), 2), 4)
        return self.fc(x.flatten(1))


def make_data(n: int, seed: int, size: int = 16):
    g = torch.Generator().manual_seed(1234)
    templates = F.interpolate(torch.rand(N_CLASSES, 3, 4, 4, generator=g), size=(size, size),
                              mode="bilinear", align_corners=False) * 0.3 + 0.35
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, N_CLASSES, (n,), generator=g)
    x = (templates[y] + 0.2 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    return x, y


def train_tiny(seed: int = 0, size: int = 16, steps: int = 60) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyNet()
    model.input_size = (size, size)
    x, y = make_data(2048, seed=1, size=size)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for i in range(steps):
        b = torch.randint(0, x.shape[0], (64,))
        loss = F.cross_entropy(model(x[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny():
    torch.set_num_threads(1)
    return train_tiny()


@pytest.fixture(scope="session")
def data():
    x, y = make_data(96, seed=7)
    return x, y, torch.arange(1000, 1000 + x.shape[0])


@pytest.fixture(scope="session")
def tiny24():
    """A second, independently trained model at 24 px (a transfer target of another resolution)."""
    torch.set_num_threads(1)
    return train_tiny(seed=3, size=24)
