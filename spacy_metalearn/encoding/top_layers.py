"""The top layers of the component's own transformer, trained while the layers
below them stay frozen: deep adaptation (adapt(deep_steps=N)) and
meta-pretraining with `meta_train_layers` both update only the top layers.

Frozen, the embeddings and the lower layers run without dropout or gradient,
and what they give for a text does not change while their weights do not: it
is computed once per text (one window of its wordpieces) and reused, so a
training step costs only the top layers' forward and backward passes.
"""

import contextlib
import threading
from typing import Any, ContextManager, Dict, Iterable, List, Optional, Sequence

import numpy
import torch
from thinc.api import Model

from ..errors import Errors
from ..models.encoder import find_transformer_shim, weights_fingerprint


def find_transformer(encoder: Model):
    """The Hugging Face model inside a spacy-transformers layer of `encoder`,
    or None (a listener or a tok2vec has none)."""
    shim = find_transformer_shim(encoder)
    transformer = None if shim is None else shim._hfmodel.transformer
    return transformer if isinstance(transformer, torch.nn.Module) else None


class TopLayers:
    """The top `n_layers` layers of the Hugging Face transformer inside an
    encoder (spacy_metalearn.TransformerEncoder.v1, as the component owns it):
    their parameters, and copies of their weights to keep and put back.

    encoder (thinc.api.Model): The component's encoder.
    n_layers (int): How many layers, counted from the top.
    setting (str): The setting that asked for them, named in errors.
    """

    def __init__(self, encoder: Model, n_layers: int, setting: str = "deep_adapt_layers") -> None:
        transformer = find_transformer(encoder)
        layers = getattr(getattr(transformer, "encoder", None), "layer", None)
        if transformer is None or not isinstance(layers, torch.nn.ModuleList):
            raise ValueError(Errors.E038)
        if not 1 <= n_layers <= len(layers):
            raise ValueError(
                Errors.E019.format(
                    setting=setting,
                    requirement=f"an integer in [1, {len(layers)}] (the transformer's layers)",
                    value=n_layers,
                )
            )
        self.transformer = transformer
        self.first = first = len(layers) - n_layers
        prefixes = tuple(f"encoder.layer.{i}." for i in range(first, len(layers)))
        self.parameters = {
            name: param
            for name, param in transformer.named_parameters()
            if name.startswith(prefixes)
        }

    @property
    def frozen_modules(self) -> List[torch.nn.Module]:
        """The embeddings and the layers below the top ones."""
        layers = self.transformer.encoder.layer
        return [self.transformer.embeddings, *layers[: self.first]]

    def state(self, names: Optional[Iterable[str]] = None) -> Dict[str, numpy.ndarray]:
        """A float32 copy of the transformer's parameters of these names, by
        name (default: those adapted)."""
        parameters = dict(self.transformer.named_parameters())
        return {
            name: parameters[name].detach().cpu().numpy().astype("float32", copy=True)
            for name in (self.parameters if names is None else names)
        }

    def load(self, state: Dict[str, numpy.ndarray]) -> None:
        """Put saved weights back: the transformer's parameters of those names
        (which may be other layers than these, when deep_adapt_layers changed)."""
        parameters = dict(self.transformer.named_parameters())
        problem = find_state_problem(state, parameters)
        if problem:
            raise ValueError(Errors.E014.format(problem=problem))
        with torch.no_grad():
            for name, values in state.items():
                parameters[name].copy_(torch.from_numpy(values.copy()))


def find_state_problem(
    state: Dict[str, numpy.ndarray], parameters: Dict[str, torch.nn.Parameter]
) -> str:
    """What is wrong with saved weights for these parameters, or ''."""
    for name, values in state.items():
        if name not in parameters:
            return f"the deep-adaptation start names '{name}', which the transformer lacks"
        if not isinstance(values, numpy.ndarray) or values.shape != tuple(parameters[name].shape):
            return f"the deep-adaptation start's '{name}' does not have its parameter's shape"
        if not numpy.isfinite(values).all():
            return f"the deep-adaptation start's '{name}' holds NaN or infinity"
    return ""


class LowerLayerOutputs:
    """What the frozen lower layers gave for each input row seen (one window
    of a text's wordpieces, told apart by its token ids and positions): a
    (wordpieces, width) float tensor each, kept while the weights they came
    from are unchanged (see follow())."""

    def __init__(self) -> None:
        self.rows: Dict[bytes, torch.Tensor] = {}
        self._fingerprint: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.rows)

    def follow(self, modules: Sequence[torch.nn.Module]) -> None:
        """Forget every output when the weights of `modules` (the frozen ones)
        are not those the outputs were computed with."""
        fingerprint = tuple(weights_fingerprint(module) for module in modules)
        if fingerprint != self._fingerprint:
            self.rows.clear()
            self._fingerprint = fingerprint


class _FrozenLowerLayers(torch.nn.Module):
    """Stands in for the first of the frozen lower layers: gives back the
    outputs already computed for every row of the batch, or else runs all the
    lower layers on it (without dropout or gradient) and keeps their output
    per row. The layers are held in a plain list, so they are not its
    submodules."""

    def __init__(self, lower: Sequence[torch.nn.Module], outputs: LowerLayerOutputs) -> None:
        super().__init__()
        self.lower = list(lower)
        self.outputs = outputs
        # the rows of the forward pass running in each thread, set by a hook
        # on the transformer before it starts
        self.inputs = threading.local()

    @property
    def keys(self) -> Optional[List[bytes]]:
        return getattr(self.inputs, "keys", None)

    @property
    def mask(self) -> Optional[torch.Tensor]:
        return getattr(self.inputs, "mask", None)

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        rows = self.outputs.rows
        if self.keys is not None and all(key in rows for key in self.keys):
            # the padding is masked out of the attention: its values do not matter
            output = hidden_states.new_zeros(hidden_states.shape)
            for i, key in enumerate(self.keys):
                output[i, self.mask[i]] = rows[key]
            return (output,)
        with torch.no_grad():
            for layer in self.lower:
                training = layer.training
                layer.train(False)
                try:
                    hidden_states = layer(hidden_states, attention_mask, *args, **kwargs)[0]
                finally:
                    layer.train(training)
        if self.keys is not None:
            for i, key in enumerate(self.keys):
                if key not in rows:
                    rows[key] = hidden_states[i, self.mask[i]].clone()
        return (hidden_states,)


class _PassThrough(torch.nn.Module):
    """Stands in for the other frozen lower layers: their work is done."""

    def forward(self, hidden_states, *args, **kwargs):
        return (hidden_states,)


def _row_keys(args, kwargs) -> Optional[tuple]:
    """Each input row's key (its token ids, token types and positions) and
    the (batch, length) mask of its wordpieces, from the transformer's inputs
    (BERT's forward: input_ids, attention_mask, token_type_ids, ...)."""
    kwargs = {**dict(zip(("input_ids", "attention_mask", "token_type_ids"), args)), **kwargs}
    input_ids = kwargs.get("input_ids")
    if input_ids is None:
        return None
    mask = kwargs.get("attention_mask")
    mask = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else mask.bool()
    token_types = kwargs.get("token_type_ids")
    ids, masks = input_ids.cpu().numpy(), mask.cpu().numpy()
    types = None if token_types is None else token_types.cpu().numpy()
    keys = []
    for i in range(len(ids)):
        positions = numpy.flatnonzero(masks[i])
        key = ids[i][positions].tobytes() + b"|" + positions.tobytes()
        if types is not None:
            key += b"|" + types[i][positions].tobytes()
        keys.append(key)
    return keys, mask


def training_layers(
    encoder: Model, n_layers: Optional[int], outputs: LowerLayerOutputs
) -> ContextManager[Any]:
    """Where meta-pretraining encodes: with `n_layers` (the component's
    meta_train_layers) only the transformer's top layers train, the lower ones
    frozen and their outputs kept in `outputs`; with None the whole encoder."""
    if n_layers is None:
        return contextlib.nullcontext()
    return frozen_lower_layers(TopLayers(encoder, n_layers, setting="meta_train_layers"), outputs)


@contextlib.contextmanager
def frozen_lower_layers(top: TopLayers, outputs: Optional[LowerLayerOutputs] = None):
    """Within this block the transformer's embeddings and the layers below the
    top ones are frozen: they get no gradient and run without dropout, and the
    lower layers' output for each row is computed once and then reused from
    `outputs` (default: kept for this block only). `outputs` forgets what older
    weights gave."""
    frozen = top.frozen_modules
    if outputs is None:
        outputs = LowerLayerOutputs()
    outputs.follow(frozen)
    layers = top.transformer.encoder.layer
    lower = list(layers[: top.first])
    parameters = [param for module in frozen for param in module.parameters()]
    requires_grad = [param.requires_grad for param in parameters]
    stand_in = _FrozenLowerLayers(lower, outputs)

    def remember_rows(module, args, kwargs):
        rows = _row_keys(args, kwargs)
        stand_in.inputs.keys, stand_in.inputs.mask = rows if rows is not None else (None, None)

    def without_dropout(module, args, kwargs):
        module.train(False)

    hooks = [
        top.transformer.register_forward_pre_hook(remember_rows, with_kwargs=True),
        top.transformer.embeddings.register_forward_pre_hook(without_dropout, with_kwargs=True),
    ]
    for param in parameters:
        param.requires_grad_(False)
    for i in range(len(lower)):
        layers[i] = stand_in if i == 0 else _PassThrough()
    try:
        yield outputs
    finally:
        for hook in hooks:
            hook.remove()
        for i, layer in enumerate(lower):
            layers[i] = layer
        for param, flag in zip(parameters, requires_grad):
            param.requires_grad_(flag)
