"""Proto-MAML (Triantafillou et al., 2020): MAML whose linear head starts from
the prototypes' equivalent (weight 2c_k, bias -|c_k|^2; unit c_k for cosine),
so step 0 is a ProtoNet, and the inner steps refine it. Gradients flow through
the initialisation into the encoder as well as through the inner loop."""

from ..registry import registry
from .base import Learner
from .maml import MAML, check_inner_steps


class ProtoMAML(MAML):
    initial_head = Learner.initial_head


@registry.meta_learners("spacy_metalearn.ProtoMAML.v1")
def make_proto_maml(
    inner_steps: int = 5, first_order: bool = False, learn_inner_lr: bool = True
) -> Learner:
    """Proto-MAML.

    inner_steps (int): Gradient steps on the support set, in training and (by
        default) in adapt().
    first_order (bool): Ignore second-order terms of the inner loop.
    learn_inner_lr (bool): Meta-learn the per-layer inner step sizes.
    """
    check_inner_steps(inner_steps)
    return ProtoMAML(inner_steps, first_order, learn_inner_lr)
