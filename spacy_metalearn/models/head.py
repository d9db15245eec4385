"""The prototype head: scores query embeddings against class prototypes, and
holds the meta-learned parameters of the MAML family's linear head."""

import math
from typing import Callable, Tuple

from spacy.util import registry
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Floats2d

from .metric import PARAM_NAMES, MetricHead, check_metric

InT = Tuple[Floats2d, Floats2d]


@registry.architectures("spacy_metalearn.PrototypeHead.v1")
def build_prototype_head(
    metric: str = "cosine",
    init_scale: float = 10.0,
    init_bias: float = -5.0,
    init_inner_lr: float = 10.0,
) -> Model[InT, Floats2d]:
    """Score embeddings against prototypes by a distance, with a learned
    temperature.

    metric (str): "cosine" or "squared_euclidean".
    init_scale (float): Initial inverse temperature that multiplies similarities.
    init_bias (float): Initial offset of the logits, used by multi-label scores
        (sigmoid); with cosine, -init_bias / init_scale is the similarity that
        scores 0.5.
    init_inner_lr (float): Initial inner-loop step size of the linear head
        (MAML family, adapt(steps=...)).
    RETURNS (Model[Tuple[Floats2d, Floats2d], Floats2d]): Maps (queries, prototypes)
        to logits of shape (n_queries, n_prototypes).
    """
    check_metric(metric)
    for setting, value in (("init_scale", init_scale), ("init_inner_lr", init_inner_lr)):
        if value <= 0:
            raise ValueError(f"{setting} must be positive, but got {value}")
    return Model(
        "prototype_head",
        forward,
        init=_init,
        params={name: None for name in PARAM_NAMES},
        attrs={
            "metric": metric,
            "init_scale": init_scale,
            "init_bias": init_bias,
            "init_inner_lr": init_inner_lr,
        },
    )


def _init(model: Model, X=None, Y=None) -> Model:
    ops, attrs = model.ops, model.attrs
    model.set_param("log_scale", ops.asarray1f([math.log(attrs["init_scale"])]))
    model.set_param("bias", ops.asarray1f([attrs["init_bias"]]))
    model.set_param("log_inner_lr", ops.asarray1f([math.log(attrs["init_inner_lr"])] * 2))
    return model


def metric_head(model: Model, *, requires_grad: bool = False) -> MetricHead:
    """The head's parameters as PyTorch tensors (sharing memory where possible)."""
    tensors = {
        name: xp2torch(model.get_param(name), requires_grad=requires_grad) for name in PARAM_NAMES
    }
    return MetricHead(metric=model.attrs["metric"], **tensors)


def accumulate_head_gradients(model: Model, head: MetricHead) -> None:
    """Add the gradients PyTorch computed for the head tensors to the thinc params."""
    for name, tensor in head.tensors().items():
        if tensor.grad is not None:
            model.inc_grad(name, torch2xp(tensor.grad))


def forward(model: Model[InT, Floats2d], inputs: InT, is_train: bool) -> Tuple[Floats2d, Callable]:
    query_xp, prototypes_xp = inputs
    head = metric_head(model, requires_grad=is_train)
    query = xp2torch(query_xp, requires_grad=is_train)
    prototypes = xp2torch(prototypes_xp, requires_grad=is_train)
    logits = head.logits(query, prototypes)

    def backprop(d_logits: Floats2d) -> InT:
        logits.backward(xp2torch(d_logits))
        accumulate_head_gradients(model, head)
        return torch2xp(query.grad), torch2xp(prototypes.grad)

    return torch2xp(logits.detach()), backprop
