"""Many-way training ("Baseline++", Chen et al. 2019): a cosine softmax over
every class of the meta-train corpus at once, on batches of utterances drawn
at random (spaCy's own batchers), instead of episodes of a few classes.

Each class has a weight vector, started from the normalized mean of the
embeddings its first batch brings and trained by Adam beside the encoder. The
logits are `scale` times the cosine similarity of a text to each class's
weight, and the loss is their cross-entropy. The class weights serve training
only and are not saved: after meta-pretraining the pipeline adapts as
ProtoNet does (prototypes, or a head fitted from them).
"""

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_positive
from ..errors import Errors
from ..models.metric import MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput, check_init_inner_lr


class ManyWay(Learner):
    """many_way: update() hands it whole batches with each text's label name
    (batch_loss), not episodes."""

    many_way = True

    def __init__(self, scale: float, class_learn_rate: float, init_inner_lr: float = 10.0):
        self.scale = scale
        self.class_learn_rate = class_learn_rate
        self.init_inner_lr = init_inner_lr
        self.class_index: Dict[str, int] = {}
        self.class_weights: List[Tensor] = []
        self.optimizer: Optional[torch.optim.Optimizer] = None

    def __call__(self, support, support_labels, query, query_labels, head) -> LearnerOutput:
        raise ValueError(Errors.E052)

    def batch_loss(
        self, embeddings: Tensor, labels: Sequence[str], head: MetricHead
    ) -> LearnerOutput:
        """The cosine-softmax loss of a batch over every class seen so far
        (new labels get a weight first).

        embeddings (Tensor): (n, dim) encoder outputs of the batch.
        labels (Sequence[str]): The label of each text.
        head (MetricHead): Unused: the class weights and `scale` stand in for
            the prototypes and the head's temperature.
        RETURNS (LearnerOutput): The loss, and the (n, n_classes) logits.
        """
        self._add_classes(embeddings, labels)
        targets = self.targets(labels, embeddings.device)
        weights = torch.stack(self.class_weights)
        logits = self.scale * F.normalize(embeddings, dim=-1) @ F.normalize(weights, dim=-1).T
        return LearnerOutput(F.cross_entropy(logits, targets), logits)

    def targets(self, labels: Sequence[str], device: torch.device) -> Tensor:
        return torch.tensor([self.class_index[label] for label in labels], device=device)

    def step(self) -> None:
        """Adam's step on the class weights from the gradient of the last
        batch_loss(), then their gradients cleared."""
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def _add_classes(self, embeddings: Tensor, labels: Sequence[str]) -> None:
        new = [label for label in dict.fromkeys(labels) if label not in self.class_index]
        if not new:
            return
        with torch.no_grad():
            unit = F.normalize(embeddings.detach(), dim=-1)
            rows = []
            for label in new:
                mask = torch.tensor([given == label for given in labels], device=unit.device)
                rows.append(F.normalize(unit[mask].mean(0), dim=-1).clone().requires_grad_(True))
        for label, row in zip(new, rows):
            self.class_index[label] = len(self.class_weights)
            self.class_weights.append(row)
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(rows, lr=self.class_learn_rate)
        else:
            self.optimizer.add_param_group({"params": rows})


@registry.meta_learners("spacy_metalearn.ManyWay.v1")
def make_many_way(
    scale: float = 20.0, class_learn_rate: float = 1e-3, init_inner_lr: float = 10.0
) -> Learner:
    """Many-way training: a cosine softmax over all classes of the meta-train
    corpus, with batches of utterances from any spaCy batcher.

    scale (float): The inverse temperature of the cosine logits.
    class_learn_rate (float): Adam's step size for the class weights.
    init_inner_lr (float): Step size of adapt(steps > 0), which fits a linear
        head from the prototypes.
    """
    check_positive("scale", scale)
    check_positive("class_learn_rate", class_learn_rate)
    check_init_inner_lr(init_inner_lr)
    return ManyWay(float(scale), float(class_learn_rate), init_inner_lr)
