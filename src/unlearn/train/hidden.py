"""Hidden states of one layer, captured with a forward hook instead of ``output_hidden_states``.

An objective declares the layer it reads (``Need.hidden_layer``, in ``hidden_states`` numbering: 0 = the
embeddings, k = the output of decoder layer k − 1). A hook on that one module hands back its output; asking the model
for ``output_hidden_states`` instead returns a tuple of every layer's states and, for the last layer, applies the
final norm — so the last layer (and models whose decoder layers we cannot find) keep that path, to stay equal to it.
"""

from __future__ import annotations

from typing import Any

import torch


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList | None:
    """The decoder layers of a Llama-style model (``model.model.layers``, also under a peft wrapper), else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    return layers if isinstance(layers, torch.nn.ModuleList) else None


def forward_with_hidden(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                        layer: int | None) -> tuple[Any, torch.Tensor | None]:
    """``model(**inputs)`` and, when ``layer`` is given, ``hidden_states[layer]`` (hooked where possible)."""
    if layer is None:
        return model(**inputs), None
    layers = decoder_layers(model)
    if layers is None or not 1 <= layer < len(layers):  # embeddings, the last (normed) layer, unknown models
        out = model(**inputs, output_hidden_states=True)
        return out, out.hidden_states[layer]
    captured: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = layers[layer - 1].register_forward_hook(keep)
    try:
        out = model(**inputs)
    finally:
        handle.remove()
    return out, captured[0]
