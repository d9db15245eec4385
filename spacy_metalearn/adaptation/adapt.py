"""adapt(): from support examples and label descriptions to a new
Adaptation, and, with deep steps, new weights for the encoder's top layers.

Every example is encoded once and kept as its embedding; the classifier is
built from all kept rows (adaptation.fit_adaptation). Deep adaptation first
trains the top layers on episodes drawn from the support set itself
(deep_adaptation.fit_top_layers), from their weights before any deep
adaptation. Nothing is kept unless it all succeeds: the caller takes the
result, and the encoder's weights are put back on any error."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc

from ..checks import check_steps
from ..encoding.embedding import DocEmbedder
from ..encoding.top_layers import LowerLayerOutputs, TopLayers, frozen_lower_layers
from ..errors import Errors
from ..learners.base import Learner
from ..models.balance import LabelBalance
from ..models.classifiers import Classifier
from ..models.metric import MetricHead, prepare
from .deep import fit_top_layers
from .snapshot import Adaptation, fit_adaptation
from .support import SupportData, collect_descriptions, collect_support, readable_label
from .support_set import SupportSet

DeepStart = Dict[str, numpy.ndarray]


@dataclass
class Adapted:
    """What adapt_support() gives the component to keep."""

    adaptation: Adaptation
    # the top layers' weights before deep adaptation (None: the encoder is as loaded)
    deep_start: Optional[DeepStart]
    # {"added": {label: n}, "updated": {label: n}, "removed": [labels]}
    changes: Dict[str, Any]


def adapt_support(
    data: SupportData,
    *,
    base: SupportSet,
    current_labels: Sequence[str],
    deep_start: Optional[DeepStart],
    replace: bool,
    steps: Optional[int],
    descriptions: Optional[Dict[str, str]],
    deep_steps: int,
    settings: Dict[str, Any],
    learner: Learner,
    head: MetricHead,
    device: torch.device,
    embedder: DocEmbedder,
    hold_out: bool,
) -> Adapted:
    """Adapt to `data` on top of `base` (the kept support set, or an empty
    one to start over); see FewShotTextCategorizer.adapt().

    current_labels (Sequence[str]): The labels before this call.
    steps (Optional[int]): Inner-loop steps; None: the adapt_steps setting
        with exclusive classes (0 otherwise), and if that is None the
        learner's own.
    settings (Dict[str, Any]): The component's settings (exclusive_classes,
        unknown_label, use_label_names, adapt_steps, adapt_learn_rate,
        label_balance, logit_adjustment_tau, deep_adapt_layers, deep_adapt_learn_rate).
    embedder (DocEmbedder): Makes docs and encodes them; its begin_update is
        the forward pass deep adaptation trains through.
    hold_out (bool): Fit the held-out scores the in-scope decision needs.
    """
    exclusive = settings["exclusive_classes"]
    if steps is None:  # the head steps fit a softmax: exclusive classes only
        steps = settings["adapt_steps"] if exclusive else 0
    if steps is None:
        steps = learner.inner_steps
    check_steps("steps", steps)
    check_steps("deep_steps", deep_steps)
    if steps > 0 and not exclusive:
        raise ValueError(Errors.E032.format(steps=steps))
    if deep_steps > 0 and not exclusive:
        raise ValueError(Errors.E039.format(steps=deep_steps))
    unknown_label = settings["unknown_label"]
    given = collect_descriptions(descriptions, unknown_label)
    support = collect_support(
        data, exclusive_classes=exclusive, unknown_label=unknown_label, allow_no_examples=True
    )
    if deep_steps > 0 and base.labels:
        kept = ", ".join(repr(label) for label in base.labels[:5])
        kept += ", ..." if len(base.labels) > 5 else ""
        raise ValueError(Errors.E040.format(steps=deep_steps, labels=kept))
    described = new_descriptions(support, given, base, settings["use_label_names"])
    for label in [*support, *given]:
        if not support.get(label) and label not in described and label not in base.described:
            raise ValueError(Errors.E002.format(label=label))
    if not support and not given:
        raise ValueError(Errors.E001)
    labels, docs, is_description = support_docs(embedder, support, described)
    top = None
    if deep_steps > 0 or (replace and deep_start is not None):
        top = TopLayers(embedder.encoder, settings["deep_adapt_layers"])
    # what the weights are now, to put back if anything below fails
    rollback = None if top is None else top.state([*(deep_start or ()), *top.parameters])
    try:
        if top is not None and deep_start is not None:
            top.load(deep_start)  # the encoder as it was before deep adaptation
            deep_start = None
        if deep_steps > 0:
            assert top is not None
            deep_start = top.state()
            index = {label: i for i, label in enumerate(dict.fromkeys(labels))}
            lower_outputs = LowerLayerOutputs()
            fit_top_layers(top, embedder.begin_update, docs, [index[label] for label in labels],
                           is_description, len(index), steps=deep_steps,
                           learn_rate=settings["deep_adapt_learn_rate"],
                           outputs=lower_outputs,
                           balance=LabelBalance.from_settings(settings))  # fmt: skip
            # the support through the adapted layers, from the lower layers'
            # outputs the steps computed
            with frozen_lower_layers(top, lower_outputs):
                encoded = embedder.embed_docs(docs, torch_only=True)
        else:
            encoded = embedder.embed_docs(docs)
        embeddings = prepare(encoded, head.metric)
        if base.labels and base.width != embeddings.shape[1]:
            raise ValueError(Errors.E020.format(stored=base.width, encoder=embeddings.shape[1]))
        adaptation = fit_adaptation(
            base.add(labels, embeddings.cpu().numpy(), is_description),
            learner,
            head,
            device,
            steps=steps,
            learn_rate=settings["adapt_learn_rate"],
            calibrate=not exclusive,
            hold_out=hold_out,
            balance=LabelBalance.from_settings(settings),
        )
    except BaseException:
        if rollback is not None:
            assert top is not None
            top.load(rollback)
        raise
    counts = {label: len(support.get(label, ())) for label in [*support, *given]}
    changes = {
        "added": {label: n for label, n in counts.items() if label not in base.labels},
        "updated": {label: n for label, n in counts.items() if label in base.labels},
        "removed": [label for label in current_labels if label not in adaptation.labels],
    }
    return Adapted(adaptation, deep_start, changes)


def new_descriptions(
    support: Dict[str, List[Any]], given: Dict[str, str], base: SupportSet, use_label_names: bool
) -> Dict[str, str]:
    """The descriptions an adapt() sets: those given and, with
    use_label_names, the readable name of each label of `support` that has
    no description yet (unless the name has no letters or digits)."""
    described = dict(given)
    if use_label_names:
        for label in support:
            name = readable_label(label)
            if label not in described and label not in base.described and name:
                described[label] = name
    return described


def support_docs(
    embedder: DocEmbedder, support: Dict[str, List[Any]], descriptions: Dict[str, str]
) -> Tuple[List[str], List[Doc], List[bool]]:
    """Each row's label, doc and whether it is a description, the examples
    first; an empty doc is an error naming its label."""
    labels = [label for label, items in support.items() for _ in items]
    positions = [i for items in support.values() for i in range(len(items))]
    items = [item for items in support.values() for item in items]
    docs = embedder.make_docs(items + list(descriptions.values()))
    for label, position, doc in zip(labels, positions, docs):
        if len(doc) == 0:
            raise ValueError(Errors.E006.format(label=label, index=position))
    for (label, description), doc in zip(descriptions.items(), docs[len(items) :]):
        if len(doc) == 0:
            raise ValueError(Errors.E036.format(label=label, description=description))
    is_description = [False] * len(labels) + [True] * len(descriptions)
    return labels + list(descriptions), docs, is_description


def fit_classifier(
    learner: Learner,
    head: MetricHead,
    settings: Dict[str, Any],
    support: torch.Tensor,
    support_labels: torch.Tensor,
    n_way: int,
    *,
    steps: Optional[int] = None,
    learn_rate: Optional[float] = None,
) -> Classifier:
    """A classifier for embedded support examples, fitted as adapt() fits one
    with the component's settings: `steps` (None: adapt_steps, and if that is
    None the learner's own) of `learn_rate` (None: adapt_learn_rate), with
    its label_balance."""
    steps = settings["adapt_steps"] if steps is None else steps
    steps = learner.inner_steps if steps is None else steps
    learn_rate = settings["adapt_learn_rate"] if learn_rate is None else learn_rate
    prepared = prepare(support, head.metric)
    return learner.adapt(
        prepared, support_labels, n_way, head, steps=steps, learn_rate=learn_rate,
        balance=LabelBalance.from_settings(settings),
    )  # fmt: skip
