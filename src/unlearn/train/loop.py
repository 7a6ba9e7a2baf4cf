"""The training loop (DESIGN.md "Our own loop on Accelerate"): AdamW + weight decay, linear warm-up over the
first epoch then linear decay, gradient accumulation, clipping, epochs or max_steps, a progress bar with the
losses, optional per-epoch evaluation, checkpoints that resume to the same result, and a NaN/Inf guard.

Data order is a pure function of (seed, epoch): epoch e visits items in ``randperm(n, seed·1_000_003 + e)``,
so a resumed run skips exactly the micro-batches it already did and continues bit-identically on CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from unlearn.errors import TrainingDiverged
from unlearn.io import append_jsonl, atomic_dir, read_jsonl, write_jsonl

StepFn = Callable[[torch.nn.Module, Sequence[int]], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EpochHook = Callable[[int, torch.nn.Module], dict]


@dataclass
class LoopSettings:
    epochs: int = 5
    max_steps: int | None = None
    lr: float = 1e-5
    weight_decay: float = 0.01
    batch_size: int = 4
    grad_accum: int = 8
    warmup_epochs: float = 1.0
    max_grad_norm: float = 1.0
    seed: int = 0
    save_every: int = 0  # optimizer steps between mid-epoch checkpoints (0: only at epoch ends)
    progress: bool = True
    desc: str = "train"


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def epoch_groups(n: int, settings: LoopSettings, epoch: int) -> list[list[list[int]]]:
    """Optimizer steps of one epoch, each a list of micro-batches (lists of item indices)."""
    order = epoch_order(n, settings.seed, epoch)
    micro = [order[i:i + settings.batch_size] for i in range(0, n, settings.batch_size)]
    return [micro[i:i + settings.grad_accum] for i in range(0, len(micro), settings.grad_accum)]


def steps_per_epoch(n: int, settings: LoopSettings) -> int:
    return math.ceil(math.ceil(n / settings.batch_size) / settings.grad_accum)


@dataclass
class LoopResult:
    global_step: int
    epochs_done: int
    seconds: float
    resumed_from: int | None


class _Checkpoint:
    """``run_dir/checkpoint``: trainable weights (safetensors), optimizer + scheduler + RNG, position."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "checkpoint"

    def exists(self) -> bool:
        return (self.path / "state.json").is_file()

    def save(self, model, optimizer, scheduler, state: dict) -> None:
        trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        with atomic_dir(self.path) as tmp:
            save_file(trainable, str(tmp / "trainable.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state()}, tmp / "optim.pt")
            (tmp / "state.json").write_text(json.dumps(state, indent=2))

    def load(self, model, optimizer, scheduler) -> dict:
        state = json.loads((self.path / "state.json").read_text())
        weights = load_file(str(self.path / "trainable.safetensors"))
        params = dict(model.named_parameters())
        missing = [n for n in weights if n not in params]
        if missing:
            raise TrainingDiverged(f"checkpoint {self.path} does not match this model (e.g. {missing[0]}); "
                                   "remove it or use another output directory")
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device))
        extra = torch.load(self.path / "optim.pt", weights_only=True)
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        return state


def train_loop(
    model: torch.nn.Module,
    step_fn: StepFn,
    n_items: int,
    settings: LoopSettings,
    run_dir: str | os.PathLike[str],
    accelerator: Accelerator,
    on_epoch_end: EpochHook | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> LoopResult:
    """Train ``model`` in place. Logs go to ``run_dir/train_log.jsonl`` and ``run_dir/epochs.jsonl``.

    ``stop_after_steps`` ends the call early after that many optimizer steps (used to test resuming).
    """
    run_dir = Path(run_dir)
    log_path, epochs_path = run_dir / "train_log.jsonl", run_dir / "epochs.jsonl"
    per_epoch = steps_per_epoch(n_items, settings)
    total = settings.max_steps if settings.max_steps else per_epoch * settings.epochs
    n_epochs = math.ceil(total / per_epoch)
    warmup = min(round(settings.warmup_epochs * per_epoch), max(total - 1, 0))

    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpoint = _Checkpoint(run_dir)

    global_step, start_epoch, start_group, resumed_from = 0, 0, 0, None
    if resume and checkpoint.exists():
        state = checkpoint.load(accelerator.unwrap_model(model), optimizer, scheduler)
        if state["settings"] != _comparable(settings):
            raise TrainingDiverged(
                f"cannot resume from {checkpoint.path}: it was written with other settings "
                f"({state['settings']}); use the same config or a fresh output directory"
            )
        global_step, start_epoch, start_group = state["global_step"], state["epoch"], state["group"]
        resumed_from = global_step
        # Drop log lines written after the checkpoint so the logs match an uninterrupted run.
        if log_path.exists():
            write_jsonl(log_path, [r for r in read_jsonl(log_path) if r["step"] <= global_step])
        if epochs_path.exists():
            write_jsonl(epochs_path, [r for r in read_jsonl(epochs_path) if r["epoch"] <= start_epoch])
    else:
        for path in (log_path, epochs_path):
            if path.exists():
                path.unlink()

    def save(epoch: int, group: int) -> None:
        if accelerator.is_main_process:
            state = {"global_step": global_step, "epoch": epoch, "group": group, "settings": _comparable(settings)}
            checkpoint.save(accelerator.unwrap_model(model), optimizer, scheduler, state)

    started = time.time()
    if on_epoch_end is not None and global_step == 0 and accelerator.is_main_process:
        model.eval()  # epoch 0: the starting model, so trajectories begin where training does
        append_jsonl(epochs_path, {"epoch": 0, "step": 0, **(on_epoch_end(0, accelerator.unwrap_model(model)) or {})})
    model.train()
    bar = tqdm(total=total, initial=global_step, desc=settings.desc, disable=None if settings.progress else True,
               dynamic_ncols=True, leave=False)
    steps_this_call = 0
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, n_epochs):
            groups = epoch_groups(n_items, settings, epoch)
            first = start_group if epoch == start_epoch else 0
            for g in range(first, len(groups)):
                if global_step >= total:
                    break
                logs = _optimizer_step(model, step_fn, groups[g], optimizer, scheduler, accelerator, settings,
                                       global_step, epoch)
                global_step += 1
                steps_this_call += 1
                row = {"step": global_step, "epoch": epoch + (g + 1) / len(groups), **logs}
                if accelerator.is_main_process:
                    append_jsonl(log_path, row)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "lr"})
                at_epoch_end = g == len(groups) - 1 or global_step >= total
                if settings.save_every and global_step % settings.save_every == 0 and not at_epoch_end:
                    save(epoch, g + 1)
                if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                    return LoopResult(global_step, epoch, time.time() - started, resumed_from)
            if on_epoch_end is not None:
                model.eval()
                metrics = on_epoch_end(epoch + 1, accelerator.unwrap_model(model))
                model.train()
                if accelerator.is_main_process:
                    append_jsonl(epochs_path, {"epoch": epoch + 1, "step": global_step, **(metrics or {})})
            save(epoch + 1, 0)
            if global_step >= total:
                break
    finally:
        bar.close()
    model.eval()
    return LoopResult(global_step, epoch + 1, time.time() - started, resumed_from)


def _comparable(settings: LoopSettings) -> dict:
    """Settings that change the trajectory (progress/desc/save_every do not)."""
    d = asdict(settings)
    for key in ("progress", "desc", "save_every"):
        d.pop(key)
    return d


def _optimizer_step(model, step_fn, micro_batches, optimizer, scheduler, accelerator, settings, step, epoch):
    """Accumulate gradients over ``micro_batches`` (loss averaged over them), clip, step, schedule."""
    sums: dict[str, float] = {}
    n = len(micro_batches)
    for k, indices in enumerate(micro_batches):
        sync = k == n - 1
        context = accelerator.no_sync(model) if not sync else contextlib.nullcontext()
        with context, accelerator.autocast():
            loss, parts = step_fn(model, indices)
            if not torch.isfinite(loss):
                detail = ", ".join(f"{name}={float(v):.4g}" for name, v in parts.items())
                raise TrainingDiverged(
                    f"loss became {float(loss.detach())} at epoch {epoch + 1}, optimizer step {step + 1} "
                    f"(items {list(indices)[:8]}{'…' if len(indices) > 8 else ''}; {detail}). "
                    "Stopped before updating the weights; lower train.lr or check the data."
                )
            accelerator.backward(loss / n)
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) / n
        for name, v in parts.items():
            sums[name] = sums.get(name, 0.0) + float(v) / n
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    if grad_norm is not None and not torch.isfinite(torch.as_tensor(grad_norm)):
        raise TrainingDiverged(f"gradient norm became {float(grad_norm)} at optimizer step {step + 1}; "
                               "stopped before updating the weights; lower train.lr")
    sums["lr"] = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if grad_norm is not None:
        sums["grad_norm"] = float(grad_norm)
    return sums
