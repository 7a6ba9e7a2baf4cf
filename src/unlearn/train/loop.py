"""The training loop (one for fine-tuning, unlearning and the Markov study), on Hugging Face Accelerate.

AdamW + weight decay, linear warm-up over the first epoch then linear decay (or a constant rate), gradient
accumulation, clipping, epochs or max_steps, a progress bar with the losses, per-epoch and per-step hooks,
checkpoints that resume to the same result, and a NaN/Inf guard.

Data order is a pure function of (seed, epoch): epoch e visits items in ``randperm(n, seed·1_000_003 + e)``
(or in a ``plan`` the caller gives), so a resumed run skips exactly the micro-batches it already did and continues
bit-identically on CPU.

Gradient accumulation: an optimizer step AVERAGES THE MICRO-BATCH LOSSES. Each micro-batch's loss is the step
function's own value for that micro-batch (e.g. M(batch), the token mean over that micro-batch's labels) and is
back-propagated divided by the number of micro-batches, so the step's gradient is the mean of the micro-batch
gradients. It is *not* one token mean over every label of the step. Hence ``batch_size=4, grad_accum=2`` equals
``batch_size=8, grad_accum=1`` exactly for losses that are per-sample means (NPO, SimNPO, DPO, AP), but for token
means (GA, GD, IDK) only when both micro-batches hold equally many label tokens (pinned by
``tests/test_training.py::test_gradient_accumulation_averages_micro_batch_losses``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_constant_schedule, get_linear_schedule_with_warmup

from unlearn.errors import ConfigError, TrainingDiverged
from unlearn.runs import RunDirectory
from unlearn.train.checkpoint import Checkpoint
from unlearn.train.tracking import flat_numbers

if TYPE_CHECKING:
    from unlearn.config.schema import TrainConfig

StepFn = Callable[[torch.nn.Module, Sequence[int]], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EpochHook = Callable[[int, torch.nn.Module], dict]
StepHook = Callable[[int, dict[str, float], torch.nn.Module], None]
Plan = Callable[[int], list[list[list[int]]]]  # epoch → optimizer steps → micro-batches → item indices
SCHEDULES = ("linear", "constant")


class TrainState(Protocol):
    """State a loss keeps across optimizer steps (PDU's dual variable): updated after every step and every epoch,
    logged, stored in every checkpoint and restored on resume, so a resumed run continues it exactly."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def after_step(self, logs: dict[str, float], epoch: int) -> dict[str, float]: ...

    def after_epoch(self, epoch: int, model: torch.nn.Module) -> dict[str, float]: ...


DECAY = ("matrices", "all")


@dataclass
class LoopSettings:
    """What the loop needs; :meth:`from_train` derives it from a run's ``train`` section."""

    epochs: int = 5
    max_steps: int | None = None
    lr: float = 1e-5
    weight_decay: float = 0.01
    batch_size: int = 4
    grad_accum: int = 8
    warmup_epochs: float = 1.0
    max_grad_norm: float | None = 1.0  # None: no clipping
    seed: int = 0
    save_every: int = 0  # optimizer steps between mid-epoch checkpoints (0: only at epoch ends)
    stop_after_epoch: int = 0  # end after this epoch, on the schedule of every epoch (0: train them all)
    schedule: str = "linear"  # "linear": warm-up then linear decay to 0; "constant": lr throughout
    decay: str = "matrices"  # weight decay on "matrices" (parameters with ≥ 2 dims) or on "all" parameters
    group_by_length: bool = False  # micro-batches of similar length (needs the items' lengths)
    progress: bool = True
    desc: str = "train"

    @classmethod
    def from_train(cls, train: TrainConfig, *, progress: bool, desc: str) -> LoopSettings:
        return cls(epochs=train.epochs, max_steps=train.max_steps, lr=train.lr, weight_decay=train.weight_decay,
                   batch_size=train.batch_size, grad_accum=train.grad_accum, warmup_epochs=train.warmup_epochs,
                   max_grad_norm=train.max_grad_norm, seed=train.seed, save_every=train.save_every,
                   stop_after_epoch=train.stop_after_epoch, group_by_length=train.group_by_length,
                   progress=progress, desc=desc)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def epoch_groups(n: int, settings: LoopSettings, epoch: int,
                 lengths: Sequence[int] | None = None) -> list[list[list[int]]]:
    """Optimizer steps of one epoch, each a list of micro-batches (lists of item indices). With
    ``settings.group_by_length``, transformers' length-grouped order (mega-batches of the seeded permutation sorted by
    ``lengths``, the longest micro-batch first) under the same per-epoch seed."""
    if settings.group_by_length:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        if lengths is None or len(lengths) != n:
            raise ValueError("group_by_length needs one length per item")
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
        order = list(get_length_grouped_indices(list(lengths), settings.batch_size, generator=generator))
    else:
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


def train_loop(
    model: torch.nn.Module,
    step_fn: StepFn,
    n_items: int,
    settings: LoopSettings,
    run_dir: RunDirectory | str | os.PathLike[str] | None,
    accelerator: Accelerator,
    on_epoch_end: EpochHook | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
    plan: Plan | None = None,
    on_step_end: StepHook | None = None,
    fingerprint: dict | None = None,
    lengths: Callable[[], Sequence[int]] | None = None,
    state: TrainState | None = None,
) -> LoopResult:
    """Train ``model`` in place. With a run directory, logs go to its train log and per-epoch file and checkpoints
    to its checkpoint directory; without one (``None``) nothing is written.

    ``on_epoch_end(epoch, model)`` returns per-epoch metrics (also called with epoch 0, the starting model);
    ``on_step_end(step, logs, model)`` runs after every optimizer step; ``stop_after_steps`` ends the call early
    after that many optimizer steps (used to test resuming). ``fingerprint`` (the run's configuration) is stored in
    every checkpoint, so a resume under another configuration can be refused before anything is written.
    ``lengths()`` (tokens per item) serves ``settings.group_by_length``; it is called only then. ``state`` (a
    loss's state across steps) is updated after each step (its values join the step's train-log row) and each epoch
    (its values join the epoch's row), saved in every checkpoint and restored on resume.
    """
    run = RunDirectory(run_dir) if run_dir is not None and not isinstance(run_dir, RunDirectory) else run_dir
    item_lengths = lengths() if lengths is not None and settings.group_by_length else None
    plan = plan or (lambda epoch: epoch_groups(n_items, settings, epoch, item_lengths))
    first_epoch = plan(0)
    per_epoch = len(first_epoch)
    check_world_size(accelerator.num_processes, first_epoch)
    total = settings.max_steps if settings.max_steps else per_epoch * settings.epochs
    n_epochs = math.ceil(total / per_epoch)
    last_epoch = min(n_epochs, settings.stop_after_epoch) if settings.stop_after_epoch else n_epochs
    optimizer, scheduler = _optimizer(model, settings, per_epoch, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpoint = Checkpoint(run.checkpoint_dir) if run is not None else None
    main = accelerator.is_main_process and run is not None

    global_step, start_epoch, start_group, resumed_from = 0, 0, 0, None
    if resume and checkpoint is not None and checkpoint.exists():
        saved = checkpoint.load(accelerator.unwrap_model(model), optimizer, scheduler)
        if saved["settings"] != _comparable(settings):
            raise TrainingDiverged(f"cannot resume from {checkpoint.path}: it was written with other settings "
                                   f"({saved['settings']}); use the same config or a fresh output directory")
        global_step, start_epoch, start_group = saved["global_step"], saved["epoch"], saved["group"]
        if state is not None:
            if "method_state" not in saved:
                raise TrainingDiverged(f"cannot resume from {checkpoint.path}: it holds no state of the method's "
                                       "objectives (written by an earlier version); use a fresh output directory")
            state.load_state_dict(saved["method_state"])
        if (start_epoch, start_group) > (last_epoch, 0):
            raise TrainingDiverged(f"cannot resume from {checkpoint.path}: it is past epoch {last_epoch} "
                                   f"(train.stop_after_epoch); use a fresh output directory")
        resumed_from = global_step
        if accelerator.is_main_process:
            run.truncate_logs(global_step, start_epoch)
    elif run is not None and accelerator.is_main_process:
        run.reset_logs()

    world, rank = accelerator.num_processes, accelerator.process_index
    if world > 1 and run is not None:
        run.truncate_rank_log(rank, global_step)

    def save(epoch: int, group: int) -> None:
        if main:
            position = {"global_step": global_step, "epoch": epoch, "group": group,
                        "settings": _comparable(settings), "config": fingerprint}
            if state is not None:
                position["method_state"] = state.state_dict()
            checkpoint.save(accelerator.unwrap_model(model), optimizer, scheduler, position)

    def evaluate(epoch: int, extra: dict[str, float] | None = None) -> None:
        model.eval()
        metrics = on_epoch_end(epoch, accelerator.unwrap_model(model)) or {}
        model.train()
        if main:
            run.append_epoch({"epoch": epoch, "step": global_step, **(extra or {}), **metrics})
        accelerator.log(flat_numbers(metrics, "eval"), step=global_step)  # a no-op without trackers

    started = time.time()
    if on_epoch_end is not None and global_step == 0:
        evaluate(0)  # epoch 0: the starting model, so trajectories begin where training does
    model.train()
    bar = tqdm(total=total, initial=global_step, desc=settings.desc, disable=None if settings.progress else True,
               dynamic_ncols=True, leave=False)
    steps_this_call, epoch = 0, start_epoch
    try:
        for epoch in range(start_epoch, last_epoch):
            groups = plan(epoch)
            for g in range(start_group if epoch == start_epoch else 0, len(groups)):
                if global_step >= total:
                    break
                logs = _optimizer_step(model, step_fn, groups[g], optimizer, scheduler, accelerator, settings,
                                       global_step, epoch)
                if state is not None:
                    logs.update(state.after_step(logs, epoch))
                global_step += 1
                steps_this_call += 1
                if world > 1 and run is not None:
                    run.append_rank_log(rank, {"step": global_step, "items": groups[g][rank::world]})
                if main:
                    run.append_train_log({"step": global_step, "epoch": epoch + (g + 1) / len(groups), **logs})
                accelerator.log(logs, step=global_step)
                if on_step_end is not None:
                    on_step_end(global_step, logs, accelerator.unwrap_model(model))
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "lr"})
                at_epoch_end = g == len(groups) - 1 or global_step >= total
                if settings.save_every and global_step % settings.save_every == 0 and not at_epoch_end:
                    save(epoch, g + 1)
                if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                    return LoopResult(global_step, epoch, time.time() - started, resumed_from)
            epoch_values: dict[str, float] = {}
            if state is not None:
                model.eval()
                epoch_values = state.after_epoch(epoch, model)
                model.train()
                accelerator.log(epoch_values, step=global_step)
            if on_epoch_end is not None:
                evaluate(epoch + 1, epoch_values)
            save(epoch + 1, 0)
            if global_step >= total:
                break
    finally:
        bar.close()
        for tracker in accelerator.trackers:  # flush and close them; not end_training(), which would also end the
            tracker.finish()                   # process group the final evaluation still needs
    model.eval()
    return LoopResult(global_step, epoch + 1, time.time() - started, resumed_from)


def check_processes(world: int, n_items: int, settings: LoopSettings) -> None:
    """:func:`check_world_size` for the plain plan of ``n_items``, before any compute (length grouping reorders the
    items but gives every step as many micro-batches)."""
    check_world_size(world, epoch_groups(n_items, replace(settings, group_by_length=False), 0))


def check_world_size(world: int, first_epoch: Sequence[Sequence[Sequence[int]]]) -> None:
    """Every rank needs a micro-batch of every full optimizer step."""
    per_step = max(len(group) for group in first_epoch)
    if world > per_step:
        raise ConfigError(f"{world} processes but an optimizer step has only {per_step} micro-batch"
                          f"{'es' if per_step > 1 else ''} (train.grad_accum × the data): each process takes its own "
                          f"micro-batches, so raise train.grad_accum to at least {world} or launch fewer processes")


def _optimizer(model: torch.nn.Module, settings: LoopSettings, per_epoch: int, total: int):
    """AdamW (weight decay on matrices only, or on every parameter) and the learning-rate schedule."""
    if settings.schedule not in SCHEDULES or settings.decay not in DECAY:
        raise ValueError(f"schedule must be one of {SCHEDULES} and decay one of {DECAY}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if settings.decay == "all":
        groups = [{"params": trainable, "weight_decay": settings.weight_decay}]
    else:
        groups = [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": settings.weight_decay},
                  {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=settings.lr)
    if settings.schedule == "constant":
        return optimizer, get_constant_schedule(optimizer)
    warmup = min(round(settings.warmup_epochs * per_epoch), max(total - 1, 0))
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total)


def _comparable(settings: LoopSettings) -> dict:
    """Settings that change the trajectory (progress/desc/save_every do not, nor where it stops)."""
    d = asdict(settings)
    for key in ("progress", "desc", "save_every", "stop_after_epoch"):
        d.pop(key)
    return d


def accumulate(model, step_fn, micro_batches, accelerator, step: int, epoch: int) -> dict[str, float]:
    """Back-propagate every micro-batch's loss divided by their number (gradient = mean of the micro-batch
    gradients); return the step's mean losses. Raises before any update if a loss is not finite.

    With several processes, rank r takes micro-batches r, r + W, … of the step (W = world size) and scales its
    losses by W, since DDP/FSDP average the ranks' gradients: the step's gradient is the same mean as on one
    process. A rank with fewer micro-batches than another in a ragged step (the epoch's last) runs a zero-weight
    stand-in so every rank makes the same number of backward passes."""
    n = len(micro_batches)
    world, rank = accelerator.num_processes, accelerator.process_index
    mine = micro_batches[rank::world]
    rounds = math.ceil(n / world)
    sums: dict[str, float] = {}
    for k in range(rounds):
        real = k < len(mine)
        indices = mine[k] if real else micro_batches[0]
        context = accelerator.no_sync(model) if k < rounds - 1 else contextlib.nullcontext()
        with context, accelerator.autocast():
            loss, parts = step_fn(model, indices)
            _check_finite(loss, parts, indices, accelerator, step, epoch)
            accelerator.backward(loss * world / n if real else loss * 0.0)
        for name, v in (("loss", loss), *parts.items()):
            sums[name] = sums.get(name, 0.0) + (float(v.detach()) / n if real else 0.0)
    if world > 1:  # each rank summed its own micro-batches' share of the mean
        names = list(sums)
        local = torch.tensor([sums[k] for k in names], dtype=torch.float64, device=accelerator.device)
        return {k: float(v) for k, v in zip(names, accelerator.reduce(local, "sum"), strict=True)}
    return sums


def _check_finite(loss, parts, indices, accelerator, step: int, epoch: int) -> None:
    finite = torch.isfinite(loss.detach()).float().reshape(1)
    if accelerator.num_processes > 1:  # every rank stops together, or the others would wait forever
        finite = accelerator.gather(finite.to(accelerator.device)).min()
    if not bool(finite):
        detail = ", ".join(f"{name}={float(v):.4g}" for name, v in parts.items())
        raise TrainingDiverged(
            f"loss became {float(loss.detach())} at epoch {epoch + 1}, optimizer step {step + 1} "
            f"(items {list(indices)[:8]}{'…' if len(indices) > 8 else ''}; {detail}). "
            "Stopped before updating the weights; lower train.lr or check the data."
        )


def _optimizer_step(model, step_fn, micro_batches, optimizer, scheduler, accelerator, settings, step, epoch):
    """Accumulate gradients over ``micro_batches``, clip, step, schedule."""
    logs = accumulate(model, step_fn, micro_batches, accelerator, step, epoch)
    max_norm = settings.max_grad_norm if settings.max_grad_norm is not None else math.inf
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)
    if grad_norm is not None and not torch.isfinite(torch.as_tensor(grad_norm)):
        raise TrainingDiverged(f"gradient norm became {float(grad_norm)} at optimizer step {step + 1}; "
                               "stopped before updating the weights; lower train.lr")
    logs["lr"] = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if grad_norm is not None:
        logs["grad_norm"] = float(grad_norm)
    return logs
