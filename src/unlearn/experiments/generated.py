"""Batch parts whose answers the starting model writes before training (AltPO's alternatives; an objective asks for
them with :meth:`~unlearn.objectives.components.Objective.generated_answers`).

Once per run, before reference log-probs are cached: every forget question is asked ``instruction`` (formatted with
the item's question and answer, then chat-formatted), batched and left-padded (:mod:`unlearn.evaluation.generation`),
``per_item`` times (sampled when more than once). The answers are stored in the run directory
(``generated_answers.json``) with a key of everything they depend on — the starting model's weights digest, the
request, the forget rows, the chat template, ``train.seed``, the toolkit's sources, library versions and device —
and are read back instead of generated again when ``--resume`` finds them under the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from unlearn.data.parts import PartData, encode_checked
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.experiments.common import log
from unlearn.io import read_json, write_json
from unlearn.objectives.needs import GeneratedAnswers


def check_budget(request: GeneratedAnswers, prompts: Sequence[Sequence[int]], max_length: int,
                 sources: Sequence[str]) -> None:
    """Every generated answer must fit ``data.max_length`` once encoded with its question (prompt + at most
    ``max_new_tokens`` + EOS): checked before anything is generated, naming the first row that cannot."""
    where = request.owner or "the objective"
    for prompt, source in zip(prompts, sources, strict=True):
        if len(prompt) + request.max_new_tokens + 1 > max_length:
            raise DataError(f"{source}: the question takes {len(prompt)} tokens, so an answer of up to "
                            f"{where}.max_new_tokens={request.max_new_tokens} does not fit data.max_length="
                            f"{max_length}; lower {where}.max_new_tokens or raise data.max_length")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def generation_key(request: GeneratedAnswers, records: Sequence[Any], template: str, seed: int,
                   provenance: dict[str, Any]) -> dict[str, Any]:
    toolkit = provenance.get("toolkit") or {}
    model = provenance.get("model") or {}
    return {"request": {k: v for k, v in request.__dict__.items() if k != "owner"},
            "model_sha256": model.get("weights_sha256") or model.get("path"),
            "rows": _digest([[r.question, r.answer] for r in records]), "template": template, "seed": seed,
            "toolkit_source": toolkit.get("source_sha256"), "versions": provenance.get("versions"),
            "device": {k: (provenance.get("device") or {}).get(k) for k in ("type", "name", "mixed_precision")}}


def check_request(request: GeneratedAnswers, formatter, records: Sequence[Any], max_length: int) -> None:
    """What the generation needs, checked when the run's inputs are encoded (before the weights load): sampling for
    more than one answer per question, and room for every answer (:func:`check_budget`)."""
    if request.per_item > 1 and not request.do_sample:
        raise ConfigError(f"{request.owner}: {request.per_item} answers per question need sampling (greedy decoding "
                          "writes the same answer each time)")
    check_budget(request, formatter.encode_prompts([r.question for r in records]), max_length,
                 [f"{r.source} field 'question'" for r in records])


def attach_generated(parts: PartData, request: GeneratedAnswers, *, model, formatter, records: Sequence[Any],
                     cfg, run, accelerator, provenance: dict[str, Any]) -> PartData:
    """``parts`` with ``request.part`` added (every item repeated ``per_item`` times), from the run directory's
    stored answers when their key matches, else generated now and stored. :func:`check_request` has passed when
    the run's inputs were encoded."""
    questions = [request.instruction.format(question=r.question, answer=r.answer) for r in records]
    prompts = formatter.encode_prompts(questions)
    key = generation_key(request, records, formatter.template, cfg.train.seed, provenance)
    answers = _stored(run, key)
    if answers is None:
        answers = _generate(model, formatter, prompts, request, cfg, accelerator)
        if accelerator.is_main_process:
            write_json(run.generated_file, {"part": request.part, "key": key, "answers": answers,
                                            "questions": [r.question for r in records]})
    else:
        log.info("%s: the %d generated answers stored in %s are reused (same model, request and data)",
                 request.part, sum(map(len, answers)), run.generated_file)
    accelerator.wait_for_everyone()  # every process (each generated the same answers, or read them)
    empty = [(i, j) for i, row in enumerate(answers) for j, a in enumerate(row) if not a.strip()]
    if empty:
        i, _ = empty[0]
        raise DataError(f"{request.part}: the starting model wrote {len(empty)} empty answer(s) (first: for "
                        f"{records[i].source}); raise {request.owner}.max_new_tokens or change its instruction")
    pairs = [(r.question, a) for r, row in zip(records, answers, strict=True) for a in row]
    where = [f"{request.part} answer {j} for {r.source}" for r, row in zip(records, answers, strict=True)
             for j in range(len(row))]
    encoded = encode_checked(formatter, pairs, where, cfg.data.max_length)
    k = request.per_item
    return parts.with_generated(request.part, [encoded[i * k:(i + 1) * k] for i in range(len(records))])


def _stored(run, key: dict[str, Any]) -> list[list[str]] | None:
    file = run.generated_file
    if not file.is_file():
        return None
    try:
        stored = read_json(file)
        if stored.get("key") == key:
            return [list(map(str, row)) for row in stored["answers"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("warning: %s is unreadable; the answers are generated again", file)
        return None
    log.info("%s was written for another model, request or data; the answers are generated again", file)
    return None


def _generate(model, formatter, prompts: list[list[int]], request: GeneratedAnswers, cfg,
              accelerator) -> list[list[str]]:
    k = request.per_item
    settings = GenerationSettings(max_new_tokens=request.max_new_tokens, do_sample=request.do_sample,
                                  temperature=request.temperature, top_p=request.top_p, seed=cfg.train.seed)
    log.info("%s: the starting model writes %d answer(s) to each of %d forget questions (at most %d new tokens)",
             request.part, k, len(prompts), request.max_new_tokens)
    was_training = model.training
    model.eval()
    try:
        flat = generate_answers(model, formatter.tokenizer, [p for p in prompts for _ in range(k)], formatter.eos_id,
                                formatter.pad_id, cfg.eval.batch_size, accelerator.device, settings)
    finally:
        model.train(was_training)
    return [flat[i * k:(i + 1) * k] for i in range(len(prompts))]
