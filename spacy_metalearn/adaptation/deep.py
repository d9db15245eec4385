"""Deep adaptation: a few gradient steps on the support set itself that update
the top layers of the component's own transformer, before the instant path
(prototypes, head steps) builds the classifier from the re-encoded support.

Each step is one ProtoNet episode made from the support set (Snell et al.
2017, the objective meta-pretraining uses): every label's examples are split
at random into a pseudo-support, which with the label's description makes its
prototype, and pseudo-queries, whose cross-entropy over the cosine
similarities to the prototypes (at a fixed scale) is minimised with Adam,
every label's pseudo-queries weighing the same unless label_balance is "none"
(models/balance.py). The
layers below the top ones are frozen (encoding/top_layers.py): they run once per text, without
dropout, and their output is reused at every step and for encoding the
support with the adapted layers afterwards (pass the same LowerLayerOutputs).
What the steps gain, and how their number and size were chosen, is in
docs/adaptation.md.
"""

import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
import torch.nn.functional as F
from thinc.api import Model, torch2xp, xp2torch

from ..encoding.top_layers import (
    LowerLayerOutputs,
    TopLayers,
    find_state_problem,
    find_transformer,
    frozen_lower_layers,
)
from ..models.balance import LabelBalance

# the cosine scale of the adaptation loss, as in the probe that chose the steps
DEEP_ADAPT_SCALE = 20.0
BeginUpdate = Callable[[List], Tuple[object, Callable]]

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
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    n_support: int,
    n_labels: int,
    balance: LabelBalance = LabelBalance(),
) -> torch.Tensor:
    """ProtoNet's query loss at a fixed cosine scale: the first `n_support`
    rows make the prototypes (normalised sums of unit vectors), the others are
    the queries, each label's weighing the same unless `balance` is "none"."""
    x = F.normalize(embeddings, dim=-1, eps=1e-12)
    sums = x.new_zeros(n_labels, x.shape[1]).index_add(0, labels[:n_support], x[:n_support])
    prototypes = F.normalize(sums, dim=-1, eps=1e-12)
    logits = DEEP_ADAPT_SCALE * x[n_support:] @ prototypes.T
    query_labels = labels[n_support:]
    weights = balance.label_weights(query_labels, n_labels)
    if weights is None:
        return F.cross_entropy(logits, query_labels)
    rows = F.cross_entropy(logits, query_labels, reduction="none")
    return (rows * weights.to(rows.dtype)).mean()


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
    outputs: Optional[LowerLayerOutputs] = None,
    balance: LabelBalance = LabelBalance(),
) -> List[float]:
    """Take `steps` Adam steps of the episode loss on pseudo-episodes of the
    support set, updating the top layers only (the others are frozen by
    frozen_lower_layers: no gradient reaches them).

    begin_update (Callable): The encoder's forward pass for training: docs ->
        (embeddings, backprop of their gradient).
    docs (Sequence[Doc]): One doc per support row (examples and descriptions).
    label_ids (Sequence[int]): Each row's label, 0..n_labels-1.
    is_description (Sequence[bool]): Whether each row is a label's description.
    outputs (Optional[LowerLayerOutputs]): Where the lower layers' outputs
        are kept (default: for these steps only); pass one to reuse them for
        encoding the support with the adapted layers afterwards.
    balance (LabelBalance): See episode_loss.
    RETURNS (List[float]): The loss of each step.
    """
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(list(top.parameters.values()), lr=learn_rate)
    losses = []
    docs = list(docs)
    try:
        with frozen_lower_layers(top, outputs):
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
                loss = episode_loss(embeddings[rows], labels, len(support), n_labels, balance)
                loss.backward()
                optimizer.zero_grad()
                backprop(torch2xp(embeddings.grad))
                optimizer.step()
                losses.append(float(loss.item()))
    finally:
        optimizer.zero_grad()
    return losses
