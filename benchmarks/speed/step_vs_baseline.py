"""One unlearning training step: ours against a baseline step written the field framework's way, same batch.

Ours: ``UnlearnStep(fast=True)`` — cached reference log-probs (no second model in memory for NPO/DPO), log-probs at
label positions only in chunks, the parts that need no logits forwarded together. Baseline: a deep copy of the model
as the reference, forwarded at every step on the parts that need it (NPO, DPO, KL), one forward per part with fp32
logits over the full vocabulary at every position (``UnlearnStep(fast=False)`` fed live reference log-probs).

Each (model, method, path) runs in a fresh process so that peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the peak resident set size sampled every 2 ms during the steps, minus the
process's size before the model was loaded (so both count model, reference copy, optimizer state and activations).
tokens/s counts the non-padding tokens of every part the trained model processes per step. MFU (GPU only) =
6 · parameters · tokens/s ÷ the device's dense bf16 peak (H100 SXM: 989 TFLOP/s), the usual training-FLOPs
convention (the reference's forward passes are not counted as useful work). With ``checkpointing`` both paths train
with Hugging Face gradient checkpointing (non-reentrant, as ``train.gradient_checkpointing=true``): what one does
at a batch whose activations would not fit otherwise.

Data: synthetic items (seeded): prompt + answer, lengths uniform in [L/2, L], labels on the last 40 % of each,
as every part (forget, retain, IDK answers) of every item.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
METHODS = ("npo+gd", "simnpo+gd", "dpo+gd", "me+gd", "ga+kl")
MODELS = {"tiny": "runs/demo-bench/target/model",
          "smollm2": os.environ.get("SMOLLM2_PATH", "runs/mc_vs_lm_eval/smollm2-135m-instruct"),
          "llama1b": "config:llama-3.2-1b"}
"""``SMOLLM2_PATH``: another copy of SmolLM2-135M-Instruct (a directory or the .gguf file, e.g. on the GPU machine
``/root/m/SmolLM2-135M-Instruct.Q4_1.gguf`` staged by ``../shared/tools/gpu-stage-smollm2``)."""
H100_BF16_PEAK = 989e12
LLAMA_32_1B = {"vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
               "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
               "rope_theta": 500000.0, "tie_word_embeddings": True, "rms_norm_eps": 1e-5}
"""Llama-3.2-1B's published architecture (its config.json), built with random weights: no download."""


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The largest resident set size seen while active, sampled every 2 ms on a thread."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def load(model_name: str, device: torch.device):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from unlearn.models.loading import load_model_and_tokenizer

    path = MODELS.get(model_name, model_name)
    if path.startswith("config:"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(LlamaConfig(**LLAMA_32_1B, attn_implementation="sdpa"))
    else:  # a directory or a .gguf file, SDPA attention (transformers' default)
        model, _ = load_model_and_tokenizer(path)
    return model.to(device)


def synthetic_parts(vocab: int, n: int, max_len: int, seed: int):
    from unlearn.data.formatting import IGNORE_INDEX, EncodedSample
    from unlearn.data.parts import PartData

    g = torch.Generator().manual_seed(seed)
    names = ("forget", "forget_idk", "retain", "retain_idk")
    parts = {}
    for k, name in enumerate(names):
        samples = []
        lengths = torch.randint(max_len // 2, max_len + 1, (n,), generator=torch.Generator().manual_seed(seed + k))
        for length in lengths.tolist():
            ids = torch.randint(3, vocab, (length,), generator=g).tolist()
            cut = length - max(1, int(0.4 * length))
            samples.append(EncodedSample(tuple(ids), tuple([IGNORE_INDEX] * cut + ids[cut:]), cut))
        parts[name] = samples
    return PartData(parts, pad_id=0, max_length=max_len)


class BaselineStep:
    """The field framework's step: a deep-copied reference forwarded at every step, full fp32 logits per part."""

    def __init__(self, method, parts, device, model):
        from unlearn.train.reference import FrozenReference
        from unlearn.train.steps import UnlearnStep

        self.reference = copy.deepcopy(model).eval() if method.needs_reference else None
        if self.reference is not None:
            for p in self.reference.parameters():
                p.requires_grad_(False)
        self.parts, self.device = parts, device
        self.live = {p: torch.zeros(len(parts)) for p in method.cached_reference_parts}
        frozen = FrozenReference(model, self.reference) if method.needs_reference_model else None
        self.inner = UnlearnStep(method, parts, device, self.live, frozen, fast=False)

    def __call__(self, model, indices):
        from unlearn.objectives.sequence import sequence_stats

        with torch.no_grad():
            for part in self.live:
                batch = {k: v.to(self.device) for k, v in self.parts.batch(part, indices).items()}
                logits = self.reference(**self.parts.model_inputs(batch)).logits
                logp = sequence_stats(logits, batch["labels"]).logp
                self.live[part][torch.as_tensor(list(indices))] = logp.float().cpu()
        return self.inner(model, indices)


def measure_one(model_name: str, method_name: str, path: str, batch: int, max_len: int, steps: int,
                device_name: str, checkpointing: bool = False) -> dict:
    """tokens/s and peak memory of ``steps`` optimizer steps (after one warm-up step) in this process."""
    from accelerate import Accelerator

    from unlearn.objectives.methods import build_method
    from unlearn.train.reference import FrozenReference, cached_reference_logp
    from unlearn.train.steps import UnlearnStep, use_fast_path

    device = torch.device(device_name)
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="bf16" if device.type == "cuda" else "no")
    before = _rss()
    model = load(model_name, device)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    parts = synthetic_parts(model.config.vocab_size, batch * (steps + 1), max_len, seed=0)
    method = build_method(method_name)
    method.prepare(model, 0)
    if path == "ours":
        cached = method.cached_reference_parts
        with accelerator.autocast():
            ref_logp = cached_reference_logp(model, parts, cached, batch, device) if cached else None
        reference = FrozenReference.for_model(model) if method.needs_reference_model else None
        step = UnlearnStep(method, parts, device, ref_logp, reference, fast=use_fast_path(True, model))
    else:
        step = BaselineStep(method, parts, device, model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    tokens_per_step = []

    def one(k: int) -> None:
        idx = list(range(k * batch, (k + 1) * batch))
        with accelerator.autocast():
            loss, _ = step(model, idx)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_per_step.append(sum(len(parts.parts[p][i].input_ids) for p in method.parts for i in idx))

    one(0)  # warm-up: allocator, kernels, optimizer state
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as rss:
        start = time.perf_counter()
        for k in range(1, steps + 1):
            one(k)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    tokens = sum(tokens_per_step[1:])
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else rss.peak - before
    n_params = sum(p.numel() for p in model.parameters())
    out = {"model": model_name, "method": method_name, "path": path, "batch": batch, "max_len": max_len,
           "steps": steps, "seconds": seconds, "tokens_per_s": tokens / seconds, "peak_bytes": peak,
           "params": n_params, "threads": torch.get_num_threads(), "checkpointing": checkpointing}
    if device.type == "cuda":
        out["mfu"] = 6 * n_params * out["tokens_per_s"] / H100_BF16_PEAK
    return out


def measure(model_name: str, method_name: str, path: str, batch: int, max_len: int, steps: int,
            device: str, checkpointing: bool = False) -> dict:
    """:func:`measure_one` in a fresh process (its own peak memory)."""
    spec = json.dumps([model_name, method_name, path, batch, max_len, steps, device, checkpointing])
    done = subprocess.run([sys.executable, __file__, "--one", spec], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if done.returncode != 0:
        raise SystemExit(f"{model_name} {method_name} {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", required=True,
                        help="JSON [model, method, path, batch, max_len, steps, device, checkpointing]")
    args = parser.parse_args()
    print(json.dumps(measure_one(*json.loads(args.one))))
