"""Data plumbing for the Lightning loops.

RL and preference modules pick their own rows per step (`records_for_step`: a pure function of
seed, step and rank), so the Trainer only needs a stream of step indices: this keeps data order
exact across `--resume` without relying on sampler state.
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader


class StepDataModule(L.LightningDataModule):
    """Yields the integers 0..num_steps-1, one per training step."""

    def __init__(self, num_steps: int):
        super().__init__()
        self.num_steps = num_steps

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.num_steps), batch_size=1, shuffle=False, num_workers=0)
