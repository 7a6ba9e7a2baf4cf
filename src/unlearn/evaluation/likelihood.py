"""Batched sequence likelihoods: S(y|x) and |y| for many (question, answer) pairs, never one at a time; the pairs that
share a question can share its prompt's encoding (:func:`shared_prompt_sequence_nll`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from unlearn.data.collate import pad_left, pad_right
from unlearn.data.formatting import IGNORE_INDEX, EncodedSample
from unlearn.models.label_logps import (
    base_model,
    fast_path_unsupported,
    greedy_hits_no_grad,
    label_argmax_hits,
    label_token_nll,
    stats_no_grad,
)
from unlearn.objectives.sequence import stats_from_token_nll


@torch.no_grad()
def batched_sequence_nll(
    model: torch.nn.Module,
    samples: Sequence[EncodedSample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (S, |y|) per sample, computed in length-sorted, right-padded batches.

    ``progress`` is an optional callable receiving the number of samples done in each batch.
    """
    fast = fast_path_unsupported(model) is None  # log-probs at the label positions only (docs/speed.md)
    nll_sum = np.empty(len(samples), dtype=np.float64)
    n_tokens = np.empty(len(samples), dtype=np.int64)
    for idx, inputs, labels in _length_sorted_batches(samples, pad_id, batch_size, device, progress):
        stats = stats_no_grad(model, inputs, labels, fast)
        nll_sum[idx] = stats.nll_sum.double().cpu().numpy()
        n_tokens[idx] = stats.n_tokens.long().cpu().numpy()
    return nll_sum, n_tokens


def _length_sorted_batches(samples: Sequence[EncodedSample], pad_id: int, batch_size: int, device: torch.device,
                           progress=None) -> Iterator[tuple[list[int], dict[str, torch.Tensor], torch.Tensor]]:
    """(sample indices, model inputs, labels) of length-sorted, right-padded batches on ``device``; ``progress``
    hears of each batch once it has been used."""
    order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in pad_right([samples[i] for i in idx], pad_id).items()}
        yield idx, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}, batch["labels"]
        if progress is not None:
            progress(len(idx))


def batched_greedy_hits(
    model: torch.nn.Module,
    samples: Sequence[EncodedSample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    progress=None,
) -> list[np.ndarray]:
    """Per sample, whether each label token is the model's greedy next token under teacher forcing (bool, one
    entry per label token, in order): the ``greedy_hits`` input of sample metrics (Exact Memorization, Extraction
    Strength: :mod:`unlearn_baselines.metrics`). Length-sorted, right-padded batches."""
    fast = fast_path_unsupported(model) is None
    out: list[np.ndarray] = [np.zeros(0, dtype=bool)] * len(samples)
    for idx, inputs, labels in _length_sorted_batches(samples, pad_id, batch_size, device, progress):
        hits, mask = greedy_hits_no_grad(model, inputs, labels, fast)
        hits, mask = hits.cpu().numpy(), mask.cpu().numpy()
        for row, i in enumerate(idx):
            out[i] = hits[row][mask[row]]
    return out


def _decoder_with_cache(model: torch.nn.Module) -> torch.nn.Module | None:
    """The decoder under ``model`` when its prompt encoding can be cached and reused (else None)."""
    if fast_path_unsupported(model) is not None:
        return None
    base = base_model(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if decoder is None or decoder is base or not getattr(base.config, "use_cache", True):
        return None
    return decoder


def _prompt_groups(samples: Sequence[EncodedSample]) -> dict[tuple[int, ...], list[int]]:
    """Sample indices by their prompt's token ids (a question's answer, paraphrase and perturbed answers)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.input_ids[:s.prompt_length], []).append(i)
    return groups


def _prompt_batches(samples: Sequence[EncodedSample], groups: dict[tuple[int, ...], list[int]],
                    batch_size: int) -> list[list[tuple[int, ...]]]:
    """Prompts in batches of up to ``batch_size`` continuations (a prompt with more is a batch of its own), ordered
    by their longest continuation, then their length, to cut padding."""
    order = sorted(groups, key=lambda p: (max(len(samples[i].input_ids) for i in groups[p]) - len(p), len(p)))
    batches: list[list[tuple[int, ...]]] = [[]]
    filled = 0  # continuations in the last batch
    for prompt in order:
        if batches[-1] and filled + len(groups[prompt]) > batch_size:
            batches.append([])
            filled = 0
        batches[-1].append(prompt)
        filled += len(groups[prompt])
    return batches


def shared_prompt_sequence_nll(
    model: torch.nn.Module,
    samples: Sequence[EncodedSample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """(S, |y|) per sample, each distinct prompt encoded once (:func:`shared_prompt_scores`)."""
    nll_sum, n_tokens, _ = shared_prompt_scores(model, samples, pad_id, batch_size, device, progress)
    return nll_sum, n_tokens


@torch.no_grad()
def shared_prompt_scores(
    model: torch.nn.Module,
    samples: Sequence[EncodedSample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    progress=None,
    hits_for: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """(S, |y|) per sample like :func:`batched_sequence_nll`, encoding each distinct prompt once; and for the samples
    ``hits_for``, whether each label token is the greedy next token (:func:`batched_greedy_hits`), read from the same
    hidden states.

    The samples that share a prompt (TOFU: a question's answer, paraphrase and perturbed answers — seven sequences,
    one prompt) are scored as one prompt pass, whose key/value cache is then repeated for each continuation: the
    prompts of a batch left-padded (each ends at the last column, whose hidden state predicts the first answer
    token), the continuations right-padded after them, with explicit position ids. A batch holds up to
    ``batch_size`` continuations (:func:`_prompt_batches`). The numbers equal scoring each sequence alone up to
    floating-point rounding (``tests/test_evaluation.py``). Models without a reusable decoder cache
    (:func:`_decoder_with_cache`), samples that share no prompt, and token sequences (no prompt) take
    :func:`batched_sequence_nll`.
    """
    decoder = _decoder_with_cache(model)
    groups = _prompt_groups(samples)
    if decoder is None or len(groups) == len(samples) or any(s.prompt_length == 0 for s in samples):
        nll_sum, n_tokens = batched_sequence_nll(model, samples, pad_id, batch_size, device, progress)
        wanted = list(hits_for)
        found = batched_greedy_hits(model, [samples[i] for i in wanted], pad_id, batch_size, device)
        return nll_sum, n_tokens, dict(zip(wanted, found, strict=True))
    head = base_model(model).get_output_embeddings()
    want = set(hits_for)
    hits: dict[int, np.ndarray] = {}
    nll_sum = np.empty(len(samples), dtype=np.float64)
    n_tokens = np.empty(len(samples), dtype=np.int64)
    for chosen in _prompt_batches(samples, groups, batch_size):
        members = [i for p in chosen for i in groups[p]]
        counts = torch.tensor([len(groups[p]) for p in chosen], device=device)
        rows = torch.repeat_interleave(torch.arange(len(chosen), device=device), counts)  # each member's prompt
        prompt = {k: v.to(device) for k, v in pad_left(chosen, pad_id).items()}
        prompt_positions = (prompt["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        out = decoder(**prompt, position_ids=prompt_positions, use_cache=True)
        cache = out.past_key_values
        cache.reorder_cache(rows)  # one copy of its prompt's keys and values per continuation
        rest = [EncodedSample(samples[i].input_ids[samples[i].prompt_length:],
                              samples[i].labels[samples[i].prompt_length:], 0) for i in members]
        cont = {k: v.to(device) for k, v in pad_right(rest, pad_id).items()}
        width = cont["input_ids"].shape[1]
        positions = prompt["attention_mask"].sum(-1)[rows, None] + torch.arange(width, device=device)
        mask = torch.cat([prompt["attention_mask"][rows], cont["attention_mask"]], dim=1)
        hidden = decoder(input_ids=cont["input_ids"], attention_mask=mask, position_ids=positions,
                         past_key_values=cache, use_cache=True).last_hidden_state
        # the prompt's last hidden state predicts the first continuation token
        hidden = torch.cat([out.last_hidden_state[rows, -1:], hidden], dim=1)
        labels = torch.nn.functional.pad(cont["labels"], (1, 0), value=IGNORE_INDEX)
        stats = stats_from_token_nll(*label_token_nll(hidden, head, labels))
        nll_sum[members] = stats.nll_sum.double().cpu().numpy()
        n_tokens[members] = stats.n_tokens.long().cpu().numpy()
        rows_wanted = [row for row, i in enumerate(members) if i in want]
        if rows_wanted:
            picked = torch.tensor(rows_wanted, device=device)
            found, mask = label_argmax_hits(hidden[picked], head, labels[picked])
            found, mask = found.cpu().numpy(), mask.cpu().numpy()
            for k, row in enumerate(rows_wanted):
                hits[members[row]] = found[k][mask[k]]
        if progress is not None:
            progress(len(members))
    return nll_sum, n_tokens, hits
