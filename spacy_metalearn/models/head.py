"""The prototype head: scores query embeddings against class prototypes."""

import math
from typing import Callable, Tuple

from spacy.util import registry
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Floats2d

from .metric import MetricHead, check_metric

InT = Tuple[Floats2d, Floats2d]


@registry.architectures("spacy_metalearn.PrototypeHead.v1")
def build_prototype_head(
    metric: str = "cosine", init_scale: float = 10.0, init_bias: float = -5.0
) -> Model[InT, Floats2d]:
    """Score embeddings against prototypes by a distance, with a learned
    temperature.

    metric (str): "cosine" or "squared_euclidean".
    init_scale (float): Initial inverse temperature that multiplies similarities.
    init_bias (float): Initial offset of the logits, used by multi-label scores
        (sigmoid); with cosine, -init_bias / init_scale is the similarity that
        scores 0.5.
    RETURNS (Model[Tuple[Floats2d, Floats2d], Floats2d]): Maps (queries, prototypes)
        to logits of shape (n_queries, n_prototypes).
    """
    check_metric(metric)
    if init_scale <= 0:
        raise ValueError(f"init_scale must be positive, but got {init_scale}")
    return Model(
        "prototype_head",
        forward,
        init=_init,
        params={"log_scale": None, "bias": None},
        attrs={"metric": metric, "init_scale": init_scale, "init_bias": init_bias},
    )


def _init(model: Model, X=None, Y=None) -> Model:
    model.set_param("log_scale", model.ops.asarray1f([math.log(model.attrs["init_scale"])]))
    model.set_param("bias", model.ops.asarray1f([model.attrs["init_bias"]]))
    return model


def metric_head(model: Model, *, requires_grad: bool = False) -> MetricHead:
    """The head's parameters as PyTorch tensors (sharing memory where possible)."""
    return MetricHead(
        metric=model.attrs["metric"],
        log_scale=xp2torch(model.get_param("log_scale"), requires_grad=requires_grad),
        bias=xp2torch(model.get_param("bias"), requires_grad=requires_grad),
    )


def accumulate_head_gradients(model: Model, head: MetricHead) -> None:
    """Add the gradients PyTorch computed for the head tensors to the thinc params."""
    for name in ("log_scale", "bias"):
        grad = getattr(head, name).grad
        if grad is not None:
            model.inc_grad(name, torch2xp(grad))


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
