"""Multi-process launches (``accelerate launch``): what the launcher's settings require of a run, checked before any
model loads.

``accelerate launch`` tells the processes how they are to be wrapped through environment variables
(``ACCELERATE_USE_DEEPSPEED``, ``ACCELERATE_USE_FSDP``, ``FSDP_VERSION``, ``FSDP_USE_ORIG_PARAMS``); the shipped
configurations are in ``configs/accelerate/`` (README, "Several GPUs").
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping

from unlearn.errors import ConfigError


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group this process belongs to, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "false").strip().lower() in ("1", "true", "yes")


def check_launch(lora: bool, grad_accum: int, env: Mapping[str, str] | None = None) -> None:
    """DeepSpeed without the package; DeepSpeed with several micro-batches per process and step (its engine steps
    the optimizer at every backward pass); FSDP1 with LoRA without ``fsdp_use_orig_params`` (peft's frozen base
    weights and trainable adapters would share flat parameters FSDP1 cannot shard)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if _flag(env, "ACCELERATE_USE_DEEPSPEED"):
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("the accelerate config uses DeepSpeed but deepspeed is not installed: "
                              "pip install '.[deepspeed]', or launch with configs/accelerate/ddp.yaml or fsdp.yaml")
        if grad_accum > world:
            raise ConfigError(f"DeepSpeed steps the optimizer at every backward pass, so each of the {world} "
                              f"processes takes one micro-batch per step: set train.grad_accum={world} (the world "
                              f"size; it is {grad_accum}) and raise train.batch_size instead")
    if _flag(env, "ACCELERATE_USE_FSDP") and lora:
        version = env.get("FSDP_VERSION", "1").strip()
        if version != "2" and not _flag(env, "FSDP_USE_ORIG_PARAMS"):
            raise ConfigError("train.lora=true under FSDP1 needs fsdp_use_orig_params: true (peft freezes the base "
                              "weights, and FSDP1 cannot shard frozen and trainable weights in one flat parameter "
                              "without it); or use FSDP2 (fsdp_version: 2, configs/accelerate/fsdp.yaml)")
