"""Deep adaptation: a few gradient steps on the support set itself that update
the top layers of the component's own transformer, before the instant path
(prototypes, head steps) builds the classifier from the re-encoded support.

Each step is one ProtoNet episode made from the support set (Snell et al.
2017, the objective meta-pretraining uses): every label's examples are split
at random into a pseudo-support, which with the label's description makes its
prototype, and pseudo-queries, whose cross-entropy over the cosine
similarities to the prototypes (at a fixed scale) is minimised with Adam. The
layers below the top ones are frozen: they run once per batch of texts, without
dropout, and their output is reused at every step.

Measured with scripts/probe_deep_adaptation.py (frozen all-MiniLM-L6-v2,
label names, 2 layers): 10 steps of 3e-5 lifted the meta-dev mean (CLINC150
banking + credit cards 5-shot, the three HINT3 bots) from 80.77 to 82.15 with
the 100 head steps after it; 20 steps scored lower there (81.52). Larger step
sizes were not measured.
"""

import contextlib
import random
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
import torch.nn.functional as F
from thinc.api import Model, torch2xp, xp2torch

from .errors import Errors
from .models.encoder import find_transformer_shim

# the cosine scale of the adaptation loss, as in the probe that chose the steps
DEEP_ADAPT_SCALE = 20.0
BeginUpdate = Callable[[List], Tuple[object, Callable]]


class TopLayers:
    """The top `n_layers` layers of the Hugging Face transformer inside an
    encoder (spacy_metalearn.TransformerEncoder.v1, as the component owns it):
    their parameters, and copies of their weights to keep and put back.

    encoder (thinc.api.Model): The component's encoder.
    n_layers (int): How many layers, counted from the top.
    """

    def __init__(self, encoder: Model, n_layers: int) -> None:
        transformer = find_transformer(encoder)
        layers = getattr(getattr(transformer, "encoder", None), "layer", None)
        if transformer is None or not isinstance(layers, torch.nn.ModuleList):
            raise ValueError(Errors.E038)
        if not 1 <= n_layers <= len(layers):
            raise ValueError(
                Errors.E019.format(
                    setting="deep_adapt_layers",
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


START_FORMAT = 1


def start_to_bytes(state: Dict[str, numpy.ndarray]) -> bytes:
    """The weights deep adaptation started from, as msgpack."""
    return srsly.msgpack_dumps({"format": START_FORMAT, "weights": state})


def start_from_bytes(data: bytes) -> Dict[str, numpy.ndarray]:
    """Read what start_to_bytes wrote: float32 arrays by parameter name
    (checked against the transformer by check_start)."""
    try:
        msg = srsly.msgpack_loads(data)
    except Exception as e:
        raise ValueError(f"not msgpack ({e})") from e
    if not isinstance(msg, dict) or msg.get("format") != START_FORMAT:
        raise ValueError(f"unknown format (this version reads format {START_FORMAT})")
    weights = msg.get("weights")
    if not isinstance(weights, dict) or not all(
        isinstance(name, str) and isinstance(values, numpy.ndarray) and values.dtype == "float32"
        for name, values in weights.items()
    ):
        raise ValueError("the weights must be float32 arrays by parameter name")
    return weights


def check_start(encoder: Model, state: Dict[str, numpy.ndarray]) -> None:
    """Refuse saved start weights that do not fit the encoder's transformer."""
    transformer = find_transformer(encoder)
    if transformer is None:
        raise ValueError("the encoder has no transformer of its own to put them back into")
    problem = find_state_problem(state, dict(transformer.named_parameters()))
    if problem:
        raise ValueError(problem)


def find_transformer(encoder: Model):
    """The Hugging Face model inside a spacy-transformers layer of `encoder`,
    or None (a listener or a tok2vec has none)."""
    shim = find_transformer_shim(encoder)
    transformer = None if shim is None else shim._hfmodel.transformer
    return transformer if isinstance(transformer, torch.nn.Module) else None


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


def pseudo_episode(
    label_ids: Sequence[int], is_description: Sequence[bool], rng: random.Random
) -> Tuple[List[int], List[int]]:
    """Rows of a support set split into a pseudo-support and pseudo-queries:
    half of each label's examples (at least one where the label has no
    description) and every description go to the pseudo-support.

    RETURNS (Tuple[List[int], List[int]]): The pseudo-support rows and the
        pseudo-query rows.
    """
    examples: Dict[int, List[int]] = {}
    support = [row for row, described in enumerate(is_description) if described]
    described_labels = {label_ids[row] for row in support}
    for row, described in enumerate(is_description):
        if not described:
            examples.setdefault(label_ids[row], []).append(row)
    query: List[int] = []
    for label, rows in examples.items():
        rows = rng.sample(rows, len(rows))
        cut = len(rows) // 2 if label in described_labels else max(1, len(rows) // 2)
        support += rows[:cut]
        query += rows[cut:]
    return support, query


def episode_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, n_support: int, n_labels: int
) -> torch.Tensor:
    """ProtoNet's query loss at a fixed cosine scale: the first `n_support`
    rows make the prototypes (normalised sums of unit vectors), the others are
    the queries."""
    x = F.normalize(embeddings, dim=-1, eps=1e-12)
    sums = x.new_zeros(n_labels, x.shape[1]).index_add(0, labels[:n_support], x[:n_support])
    prototypes = F.normalize(sums, dim=-1, eps=1e-12)
    logits = DEEP_ADAPT_SCALE * x[n_support:] @ prototypes.T
    return F.cross_entropy(logits, labels[n_support:])


class _LowerLayersOnce(torch.nn.Module):
    """Stands in for the first of the frozen lower layers while the top ones
    are fitted: runs all of them (without dropout or gradient) the first time
    it sees a batch of input ids, and gives back that output afterwards. The
    layers are held in a plain list, so they are not its submodules."""

    def __init__(self, lower: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.lower = list(lower)
        self.cache: Dict[Tuple, torch.Tensor] = {}
        self.key: Optional[Tuple] = None

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        if self.key is None or self.key not in self.cache:
            with torch.no_grad():
                for layer in self.lower:
                    training = layer.training
                    layer.train(False)
                    try:
                        hidden_states = layer(hidden_states, attention_mask, *args, **kwargs)[0]
                    finally:
                        layer.train(training)
            if self.key is None:
                return (hidden_states,)
            self.cache[self.key] = hidden_states
        return (self.cache[self.key],)


class _PassThrough(torch.nn.Module):
    """Stands in for the other frozen lower layers: their work is done."""

    def forward(self, hidden_states, *args, **kwargs):
        return (hidden_states,)


@contextlib.contextmanager
def lower_layers_run_once(top: "TopLayers"):
    """Within this block the transformer's layers below the top ones run once
    per batch of input ids (told apart by a hook on the embeddings, which also
    run without dropout) and their output is reused."""
    layers = top.transformer.encoder.layer
    lower = list(layers[: top.first])
    if not lower:
        yield
        return
    once = _LowerLayersOnce(lower)

    def remember_input_ids(module, args, kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        module.train(False)  # the cached outputs are dropout-free
        once.key = (
            None
            if input_ids is None
            else (tuple(input_ids.shape), input_ids.cpu().numpy().tobytes())
        )

    hook = top.transformer.embeddings.register_forward_pre_hook(
        remember_input_ids, with_kwargs=True
    )
    for i in range(top.first):
        layers[i] = once if i == 0 else _PassThrough()
    try:
        yield
    finally:
        hook.remove()
        for i, layer in enumerate(lower):
            layers[i] = layer


def fit_top_layers(
    top: TopLayers,
    begin_update: BeginUpdate,
    docs: Sequence,
    label_ids: Sequence[int],
    is_description: Sequence[bool],
    n_labels: int,
    *,
    steps: int,
    learn_rate: float,
    seed: int = 0,
) -> List[float]:
    """Take `steps` Adam steps of the episode loss on pseudo-episodes of the
    support set, updating the top layers only (the others get no gradient).

    begin_update (Callable): The encoder's forward pass for training: docs ->
        (embeddings, backprop of their gradient).
    docs (Sequence[Doc]): One doc per support row (examples and descriptions).
    label_ids (Sequence[int]): Each row's label, 0..n_labels-1.
    is_description (Sequence[bool]): Whether each row is a label's description.
    RETURNS (List[float]): The loss of each step.
    """
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(list(top.parameters.values()), lr=learn_rate)
    trainable = [p for p in top.transformer.parameters() if p.requires_grad]
    adapted = set(map(id, top.parameters.values()))
    for param in trainable:
        param.requires_grad_(id(param) in adapted)
    losses = []
    docs = list(docs)
    try:
        with lower_layers_run_once(top):
            for _ in range(steps):
                support, query = pseudo_episode(label_ids, is_description, rng)
                if not query:  # one example per label and no descriptions
                    break
                rows = support + query
                # every row in the same order at each step: the same batches,
                # whose lower-layer outputs are then computed once
                output, backprop = begin_update(docs)
                embeddings = xp2torch(output, requires_grad=True)
                labels = torch.tensor([label_ids[i] for i in rows], device=embeddings.device)
                loss = episode_loss(embeddings[rows], labels, len(support), n_labels)
                loss.backward()
                optimizer.zero_grad()
                backprop(torch2xp(embeddings.grad))
                optimizer.step()
                losses.append(float(loss.item()))
    finally:
        optimizer.zero_grad()
        for param in trainable:
            param.requires_grad_(True)
    return losses
