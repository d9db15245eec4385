"""Proto-MAML (Triantafillou et al., 2020): MAML whose linear head starts from
the prototypes' equivalent (weight 2c_k, bias -|c_k|^2; unit c_k for cosine;
times the inverse temperature), so step 0 is a ProtoNet and the inner steps
refine it. The start depends on the encoder and the temperature, so the outer
gradient reaches both through it as well as through the inner loop."""

from ..models.classifiers import prototype_start
from ..registry import registry
from .base import Learner, check_init_inner_lr, check_inner_steps
from .maml import MAML


class ProtoMAML(MAML):
    start = staticmethod(prototype_start)


@registry.meta_learners("spacy_metalearn.ProtoMAML.v1")
def make_proto_maml(
    inner_steps: int = 5,
    first_order: bool = False,
    learn_inner_lr: bool = True,
    init_inner_lr: float = 10.0,
) -> Learner:
    """Proto-MAML.

    inner_steps (int): Gradient steps on the support set, in training and (by
        default) in adapt().
    first_order (bool): Ignore second-order terms of the inner loop.
    learn_inner_lr (bool): Meta-learn the per-layer inner step sizes.
    init_inner_lr (float): Their initial value.
    """
    check_inner_steps(inner_steps)
    check_init_inner_lr(init_inner_lr)
    return ProtoMAML(inner_steps, first_order, learn_inner_lr, init_inner_lr)
