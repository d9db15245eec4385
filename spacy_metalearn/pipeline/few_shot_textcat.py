"""The few_shot_textcat component: a text classifier whose labels come from a
few examples each (adapt()), over an encoder that meta-pretraining (update())
has taught to separate classes it has never seen."""

import contextlib
import json
import os
import unicodedata
import warnings
from itertools import islice
from pathlib import Path
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

import numpy
import srsly
import torch
from huggingface_hub.errors import HFValidationError
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import SimpleFrozenList, from_bytes, to_bytes, to_disk
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate, torch2xp, xp2torch
from thinc.types import Floats2d

from ..adaptation import Adaptation, build_adaptation, fit_adaptation
from ..deep_adaptation import (
    check_start,
    fit_top_layers,
    start_from_bytes,
    start_to_bytes,
)
from ..embedding import DocEmbedder, length_order
from ..episodes import positive_labels, split_episode
from ..errors import Errors, Warnings
from ..learners.base import Learner
from ..models.classifiers import Classifier
from ..models.encoder import find_transformer_shim
from ..models.head import accumulate_head_gradients, metric_head, set_inner_lr
from ..models.metric import MetricHead, check_metric, prepare
from ..onnx_inference import INFERENCE_BACKENDS, TORCH_BACKEND, make_backend
from ..outputs import write_atomically
from ..payload import find_code_in_model
from ..scoring import EPISODE_ACC, unknown_gold_labels
from ..support import (
    SupportData,
    check_label,
    collect_descriptions,
    collect_support,
    readable_label,
)
from ..support_set import SupportSet
from ..top_layers import LowerLayerOutputs, TopLayers, frozen_lower_layers

# nlp.pipe(n_process > 1) forks workers; torch's thread pool, once started in the
# parent, deadlocks in a forked child. Children compute with one thread each, as
# PyTorch's DataLoader workers do.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

SERIALIZED = ("cfg", "vocab", "model", "support", "deep_start")
# settings that older versions did not save
SETTINGS_ADDED_LATER = (
    "in_scope_quantile",
    "use_label_names",
    "deep_adapt_steps",
    "deep_adapt_learn_rate",
    "deep_adapt_layers",
    "inference_backend",
    "meta_train_layers",
)

default_model_config = """
[model]
@architectures = "spacy_metalearn.FewShotClassifier.v1"

[model.encoder]
@architectures = "spacy_metalearn.DocEncoder.v1"
projection_width = null

[model.encoder.tok2vec]
@architectures = "spacy_metalearn.TransformerEncoder.v1"
name = "sentence-transformers/all-MiniLM-L6-v2"
grad_factor = 1.0
mixed_precision = false

[model.head]
@architectures = "spacy_metalearn.PrototypeHead.v2"
metric = "cosine"
init_scale = 10.0
"""
DEFAULT_MODEL = Config().from_str(default_model_config)["model"]
# chosen on CLINC150's validation split (in-scope and out-of-scope queries, 5
# and 10 shots, frozen encoder; scripts/probe_out_of_scope.py): the largest
# quantile whose in-scope accuracy stayed within 2 points of never abstaining
# both with the prototypes and with 100 head steps (the head's held-out
# scores: 1.47 points at 0.03, 2.57 at 0.04)
DEFAULT_IN_SCOPE_QUANTILE = 0.03
# chosen on the meta-dev sets of scripts/probe_deep_adaptation.py (CLINC150
# banking + credit cards, HINT3), frozen all-MiniLM-L6-v2: 10 steps of 3e-5
# on the top 2 layers; off by default (it costs seconds per step)
DEFAULT_DEEP_ADAPT_LEARN_RATE = 3e-5
DEFAULT_DEEP_ADAPT_LAYERS = 2


@Language.factory(
    "few_shot_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": DEFAULT_MODEL,
        "learner": {"@meta_learners": "spacy_metalearn.ProtoNet.v1"},
        "exclusive_classes": True,
        "threshold": None,
        "unknown_label": None,
        "in_scope_quantile": DEFAULT_IN_SCOPE_QUANTILE,
        "use_label_names": True,
        "batch_size": 32,
        "adapt_steps": None,
        "adapt_learn_rate": None,
        "deep_adapt_steps": 0,
        "deep_adapt_learn_rate": DEFAULT_DEEP_ADAPT_LEARN_RATE,
        "deep_adapt_layers": DEFAULT_DEEP_ADAPT_LAYERS,
        "inference_backend": TORCH_BACKEND,
        "meta_train_layers": None,
        "scorer": {"@scorers": "spacy_metalearn.few_shot_scorer.v1"},
    },
    default_score_weights={
        "cats_score": 1.0,
        "cats_score_desc": None,
        "cats_micro_p": None,
        "cats_micro_r": None,
        "cats_micro_f": None,
        "cats_macro_p": None,
        "cats_macro_r": None,
        "cats_macro_f": None,
        "cats_macro_auc": None,
        "cats_f_per_type": None,
        EPISODE_ACC: None,
    },
)
def make_few_shot_textcat(
    nlp: Language,
    name: str,
    model: Model,
    learner: Learner,
    exclusive_classes: bool,
    threshold: Optional[float],
    unknown_label: Optional[str],
    in_scope_quantile: Optional[float],
    use_label_names: bool,
    batch_size: int,
    adapt_steps: Optional[int],
    adapt_learn_rate: Optional[float],
    deep_adapt_steps: int,
    deep_adapt_learn_rate: float,
    deep_adapt_layers: int,
    inference_backend: str,
    meta_train_layers: Optional[int],
    scorer: Callable,
) -> "FewShotTextCategorizer":
    """Create a few_shot_textcat component.

    model (thinc.api.Model): The encoder and prototype head.
    learner (Learner): The meta-learner: turns an episode into a loss, and a
        support set into a classifier.
    exclusive_classes (bool): One label per doc (softmax) or independent labels
        (sigmoid, calibrated on the support set).
    threshold (Optional[float]): Score below which a label is not chosen;
        None means 0.0 when exclusive, 0.5 otherwise.
    unknown_label (Optional[str]): Name of a label set to 1.0 when a doc is
        out of scope (see in_scope_quantile), or None.
    in_scope_quantile (Optional[float]): With unknown_label and exclusive
        classes, a doc is out of scope when its in-scope score is below all
        but this share of the support examples' scores, each example held out
        of what scores it: with a fitted head (adapt steps > 0) its top logit
        against theirs from the head refitted without them, else its
        similarity to its nearest label's prototype against theirs to their
        own label's; None leaves the decision to the threshold alone.
    use_label_names (bool): adapt() describes each label that has no
        description by its name made readable ('card_arrival' -> 'card
        arrival'), counted as one more example of it.
    batch_size (int): Docs encoded at once, in batches of similar length.
    adapt_steps (Optional[int]): Inner-loop steps adapt() runs on the support
        set by default; None means the learner's own (0 for ProtoNet).
    adapt_learn_rate (Optional[float]): Step size of those inner-loop steps;
        None means the learner's meta-learned one.
    deep_adapt_steps (int): Steps adapt() takes by default on the support set
        through the top layers of the component's own transformer before
        building the classifier (deep adaptation); 0 turns it off.
    deep_adapt_learn_rate (float): Adam's step size for those steps.
    deep_adapt_layers (int): How many of the transformer's top layers they update.
    inference_backend (str): What runs the component's own transformer when
        docs are only encoded (predict, adapt's encoding, scoring): "torch",
        or ONNX Runtime on CPU, "onnxruntime" (float32) or "onnxruntime-int8"
        (dynamic int8 quantization; faster, slightly less accurate). Needs
        the `onnx` extra.
    meta_train_layers (Optional[int]): How many of the component's own
        transformer's top layers meta-pretraining (update()) trains; the
        embeddings and the layers below are frozen: they run without dropout
        or gradient, and their output for each training text is computed once
        and kept in memory. None trains the whole encoder.
    scorer (Callable): The scoring method.
    """
    return FewShotTextCategorizer(
        nlp.vocab,
        model,
        name,
        nlp=nlp,
        learner=learner,
        exclusive_classes=exclusive_classes,
        threshold=threshold,
        unknown_label=unknown_label,
        in_scope_quantile=in_scope_quantile,
        use_label_names=use_label_names,
        batch_size=batch_size,
        adapt_steps=adapt_steps,
        adapt_learn_rate=adapt_learn_rate,
        deep_adapt_steps=deep_adapt_steps,
        deep_adapt_learn_rate=deep_adapt_learn_rate,
        deep_adapt_layers=deep_adapt_layers,
        inference_backend=inference_backend,
        meta_train_layers=meta_train_layers,
        scorer=scorer,
    )


class CatScores(NamedTuple):
    """predict()'s output: the scores and the labels they belong to."""

    labels: Tuple[str, ...]
    scores: Floats2d  # (n_docs, n_labels)
    # (n_docs,) whether each doc is in scope, where the component decides it
    in_scope: Optional[Any] = None


class FewShotTextCategorizer(TrainablePipe):
    """Classify docs by a classifier adapted from a few examples per label.

    DOCS: https://github.com/spacy-metalearn/spacy-metalearn#readme
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "few_shot_textcat",
        *,
        nlp: Optional[Language] = None,
        learner: Learner,
        exclusive_classes: bool = True,
        threshold: Optional[float] = None,
        unknown_label: Optional[str] = None,
        in_scope_quantile: Optional[float] = DEFAULT_IN_SCOPE_QUANTILE,
        use_label_names: bool = True,
        batch_size: int = 32,
        adapt_steps: Optional[int] = None,
        adapt_learn_rate: Optional[float] = None,
        deep_adapt_steps: int = 0,
        deep_adapt_learn_rate: float = DEFAULT_DEEP_ADAPT_LEARN_RATE,
        deep_adapt_layers: int = DEFAULT_DEEP_ADAPT_LAYERS,
        inference_backend: str = TORCH_BACKEND,
        meta_train_layers: Optional[int] = None,
        scorer: Callable,
    ) -> None:
        """Initialize the component.

        vocab (Vocab): The shared vocabulary.
        model (thinc.api.Model): The encoder and prototype head.
        name (str): The component instance name, used for losses and scores.
        nlp (Optional[Language]): The pipeline; adapt() uses its tokenizer, and
            the upstream component when the encoder is a listener.
        learner (Learner): Turns an episode into a loss, a support set into a classifier.
        exclusive_classes (bool): Softmax over labels (True) or independent sigmoids.
        threshold (Optional[float]): Score below which a label is not chosen.
        unknown_label (Optional[str]): Label set when no label is chosen, or None.
        in_scope_quantile (Optional[float]): Share of support-like texts the
            in-scope check calls out of scope (exclusive classes with an
            unknown_label); None turns the check off.
        use_label_names (bool): Describe labels without a description by
            their readable name at adapt().
        batch_size (int): Docs encoded at once.
        adapt_steps (Optional[int]): adapt()'s default inner-loop steps, or
            None for the learner's own.
        adapt_learn_rate (Optional[float]): Inner-loop step size at adapt(),
            or None for the learner's meta-learned one.
        deep_adapt_steps (int): adapt()'s default deep-adaptation steps (0: none).
        deep_adapt_learn_rate (float): Their Adam step size.
        deep_adapt_layers (int): The transformer's top layers they update.
        inference_backend (str): "torch", "onnxruntime" or "onnxruntime-int8":
            what runs the transformer when docs are only encoded.
        meta_train_layers (Optional[int]): The transformer's top layers that
            update() trains, the others frozen; None: the whole encoder.
        scorer (Callable): The scoring method.
        """
        if not name or name.startswith(".") or any(sep in name for sep in ("/", "\\", os.sep)):
            # nlp.to_disk() saves the component in a folder of this name
            raise ValueError(Errors.E030.format(name=name))
        configured_threshold = threshold
        if threshold is None:
            threshold = 0.0 if exclusive_classes else 0.5
        cfg = {
            "exclusive_classes": exclusive_classes,
            "threshold": threshold,
            "unknown_label": unknown_label,
            "in_scope_quantile": in_scope_quantile,
            "use_label_names": use_label_names,
            "batch_size": batch_size,
            "adapt_steps": adapt_steps,
            "adapt_learn_rate": adapt_learn_rate,
            "deep_adapt_steps": deep_adapt_steps,
            "deep_adapt_learn_rate": deep_adapt_learn_rate,
            "deep_adapt_layers": deep_adapt_layers,
            "inference_backend": inference_backend,
            "meta_train_layers": meta_train_layers,
        }
        check_settings(cfg)
        check_meta_train_layers(meta_train_layers, model.get_ref("encoder"))
        # the settings as the config gave them, to tell load-time overrides
        # from the saved config's own values (see from_disk)
        self._configured = {**cfg, "threshold": configured_threshold}
        self.vocab = vocab
        self.model = model
        self.name = name
        self.nlp = nlp
        self.learner = learner
        self.scorer = scorer
        self.cfg: Dict[str, Any] = normalized_settings(cfg)
        self.embedder = DocEmbedder(
            model.get_ref("encoder"),
            vocab,
            nlp=nlp,
            name=name,
            batch_size=batch_size,
            backend=make_backend(inference_backend, model.get_ref("encoder")),
        )
        self._adaptation = Adaptation.empty()
        # the weights deep adaptation changed, as they were before it (what a
        # later deep adaptation starts from); None while the encoder is as loaded
        self._deep_start: Optional[Dict[str, numpy.ndarray]] = None
        self._warned_no_labels = False
        # the frozen lower layers' outputs for the texts update() has seen
        self._lower_outputs = LowerLayerOutputs()

    def set_adaptation(
        self,
        steps: Optional[int],
        learn_rate: Optional[float],
        *,
        use_label_names: Optional[bool] = None,
        deep_steps: Optional[int] = None,
    ) -> None:
        """Set how adapt() fits the support set by default: `steps` inner-loop
        steps (None: the learner's own) of size `learn_rate` (None: the
        learner's meta-learned one), whether labels are described by their
        names and how many deep-adaptation steps it takes (None: unchanged).
        Saved with the pipeline."""
        cfg = {**self.cfg, "adapt_steps": steps, "adapt_learn_rate": learn_rate}
        if use_label_names is not None:
            cfg["use_label_names"] = use_label_names
        if deep_steps is not None:
            cfg["deep_adapt_steps"] = deep_steps
        check_settings(cfg)
        self.cfg = normalized_settings(cfg)

    def set_inference_backend(self, backend: str) -> None:
        """Set what runs the component's own transformer when docs are only
        encoded: "torch", "onnxruntime" or "onnxruntime-int8" (see the
        factory). Saved with the pipeline."""
        cfg = {**self.cfg, "inference_backend": backend}
        check_settings(cfg)
        self.embedder.backend = make_backend(backend, self.model.get_ref("encoder"))
        self.cfg = normalized_settings(cfg)

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The labels, in the order of the scores."""
        return self._adaptation.labels

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def adaptation(self) -> Adaptation:
        """RETURNS (Adaptation): The current adaptation: support set, classifier
        and prototypes, as predict() reads them (immutable)."""
        return self._adaptation

    @property
    def support_counts(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): The number of support examples behind each
        label (its description not counted)."""
        support_set = self._adaptation.support_set
        return {label: int(n) for label, n in zip(support_set.labels, support_set.counts)}

    def predict(self, docs: Iterable[Doc]) -> Optional[CatScores]:
        """Score docs with the current adaptation, without modifying them.

        docs (Iterable[Doc]): The documents to predict.
        RETURNS (Optional[CatScores]): The labels and (n_docs, n_labels) scores;
            empty docs score 0.0 for every label. None when there are no labels yet.
        """
        docs = list(docs)
        adaptation = self._adaptation  # one snapshot: labels and scores stay together
        if not adaptation.labels:
            if not self._warned_no_labels:
                warnings.warn(Warnings.W001.format(name=self.name), stacklevel=2)
                self._warned_no_labels = True
            return None
        filled = [i for i, doc in enumerate(docs) if len(doc)]
        scores = torch.zeros((len(docs), len(adaptation.labels)))
        in_scope = None
        if filled:
            embeddings = self.embedder.embed_docs([docs[i] for i in filled])
            filled_scores, filled_in_scope = self._classify(adaptation, embeddings)
            scores = scores.to(embeddings.device)
            scores[filled] = filled_scores
            if filled_in_scope is not None:
                in_scope = numpy.zeros(len(docs), dtype=bool)  # empty docs: out of scope
                in_scope[filled] = filled_in_scope.cpu().numpy()
        return CatScores(adaptation.labels, torch2xp(scores), in_scope)

    def classify_embeddings(self, embeddings: Floats2d) -> CatScores:
        """Scores of the current labels for encoder outputs, and whether each is
        in scope, as predict() gives them for the docs behind them (for
        evaluations that encode a test set once and score it against many
        adaptations).

        embeddings (Floats2d): (n_docs, width) outputs of the encoder.
        RETURNS (CatScores): The labels, (n_docs, n_labels) scores and the
            in-scope decisions (None where the component makes none).
        """
        adaptation = self._adaptation
        scores, in_scope = self._classify(adaptation, xp2torch(embeddings))
        return CatScores(
            adaptation.labels,
            torch2xp(scores),
            None if in_scope is None else in_scope.cpu().numpy(),
        )

    def score_embeddings(self, embeddings: Floats2d) -> Floats2d:
        """(n_docs, n_labels) scores of the current labels for encoder outputs:
        classify_embeddings(embeddings).scores."""
        return self.classify_embeddings(embeddings).scores

    def out_of_scope(self, scores: CatScores) -> List[bool]:
        """Whether each scored doc is out of scope: its top score is below the
        threshold, or (with in_scope_quantile) its in-scope score is below
        nearly all of the support examples' held-out ones (Adaptation.in_scope)."""
        values = self.model.ops.to_numpy(scores.scores)
        return [
            bool(row.max() < self.cfg["threshold"])
            or (scores.in_scope is not None and not scores.in_scope[i])
            for i, row in enumerate(values)
        ]

    def _classify(
        self, adaptation: Adaptation, embeddings: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Scores and, where the component decides it, in-scope booleans."""
        width = adaptation.support_set.width
        if embeddings.shape[1] != width:
            raise ValueError(Errors.E020.format(stored=width, encoder=embeddings.shape[1]))
        return adaptation.classify(
            embeddings,
            exclusive_classes=self.cfg["exclusive_classes"],
            in_scope_quantile=self.cfg["in_scope_quantile"] if self._decides_in_scope() else None,
        )

    def _decides_in_scope(self) -> bool:
        """Whether the component decides from the support set which docs are
        in scope (unknown_label, exclusive classes and in_scope_quantile)."""
        cfg = self.cfg
        return (
            cfg["unknown_label"] is not None
            and cfg["exclusive_classes"]
            and cfg["in_scope_quantile"] is not None
        )

    def set_annotations(self, docs: Iterable[Doc], scores: Optional[CatScores]) -> None:
        """Write the scores to doc.cats.

        docs (Iterable[Doc]): The documents to modify.
        scores (Optional[CatScores]): The labels and scores produced by predict().
        """
        if scores is None:
            return
        values = self.model.ops.to_numpy(scores.scores)
        unknown = self.cfg["unknown_label"]
        out_of_scope = self.out_of_scope(scores) if unknown is not None else []
        for i, (doc, row) in enumerate(zip(docs, values)):
            for label, score in zip(scores.labels, row):
                doc.cats[label] = float(score)
            if unknown is not None:
                doc.cats[unknown] = 1.0 if len(doc) == 0 or out_of_scope[i] else 0.0

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Callable] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from one episode (from the episode batcher): encode its support
        and query docs, compute the meta-learner's loss and backpropagate into
        the head and the encoder.

        examples (Iterable[Example]): One episode, marked by the episode batcher.
        drop (float): The dropout rate.
        sgd (thinc.api.Optimizer): The optimizer.
        losses (Dict[str, float]): Optional record of the loss during training.
            Updated using the component name as the key: the query loss of the
            adapted classifier, comparable across learners.
        RETURNS (Dict[str, float]): The updated losses dictionary.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "FewShotTextCategorizer.update")
        # empty docs carry nothing to learn from (predict() scores them 0.0)
        examples = [eg for eg in examples if len(eg.predicted)]
        if not examples:
            return losses
        set_dropout_rate(self.model, drop)
        with self._meta_training():
            embeddings, backprop = self._begin_update([eg.predicted for eg in examples])
        loss, d_embeddings = self.get_loss(examples, embeddings)
        backprop(d_embeddings)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _meta_training(self) -> ContextManager[Any]:
        """Where update() encodes an episode: with meta_train_layers set, the
        transformer's lower layers are frozen and their outputs reused."""
        n_layers = self.cfg["meta_train_layers"]
        if n_layers is None:
            return contextlib.nullcontext()
        top = TopLayers(self.model.get_ref("encoder"), n_layers, setting="meta_train_layers")
        return frozen_lower_layers(top, self._lower_outputs)

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights from the gradients accumulated by update(), and
        drop the ONNX Runtime backend's export of the old ones.

        sgd (thinc.api.Optimizer): The optimizer.
        """
        super().finish_update(sgd)
        if self.learner.many_way:  # its class weights, which spaCy's optimizer does not own
            self.learner.step()
        if self.embedder.backend is not None:
            self.embedder.backend.invalidate()

    def _begin_update(self, docs: List[Doc]) -> Tuple[Floats2d, Callable]:
        """The model's forward pass over an episode in length-sorted batches of
        `batch_size` (a transformer pads a batch to its longest doc). A
        listening encoder gets the episode whole: its upstream component ran
        on the whole batch."""
        if self.embedder.upstream_components():
            return self.model.begin_update(docs)
        order = length_order(docs)
        chunks = [
            order[i : i + self.cfg["batch_size"]]
            for i in range(0, len(order), self.cfg["batch_size"])
        ]
        passes = [self.model.begin_update([docs[i] for i in chunk]) for chunk in chunks]
        xp = self.model.ops.xp
        embeddings = xp.concatenate([output for output, _ in passes])[xp.argsort(xp.asarray(order))]

        def backprop(d_embeddings: Floats2d) -> None:
            for chunk, (_, backprop_chunk) in zip(chunks, passes):
                backprop_chunk(d_embeddings[xp.asarray(chunk)])

        return embeddings, backprop

    def get_loss(self, examples: Iterable[Example], embeddings: Floats2d) -> Tuple[float, Floats2d]:
        """The meta-learner's objective on one episode and its gradient with
        respect to the embeddings; the head's gradients are added to its
        parameters. The returned loss is the query cross-entropy of the
        learner's adapted classifier (for every learner the same measure).

        examples (Iterable[Example]): The episode, marked by the episode batcher.
        embeddings (Floats2d): The encoder's output for the examples' docs.
        RETURNS (Tuple[float, Floats2d]): The loss and the gradient.
        """
        examples = list(examples)
        if self.learner.many_way:
            return self._many_way_loss(examples, embeddings)
        support, support_labels, query, query_labels = split_episode(examples)
        head_model = self.model.get_ref("head")
        head = metric_head(head_model, requires_grad=True)
        all_embeddings = xp2torch(embeddings, requires_grad=True)
        device = all_embeddings.device
        query_targets = torch.tensor(query_labels, device=device)
        output = self.learner(
            all_embeddings[support],
            torch.tensor(support_labels, device=device),
            all_embeddings[query],
            query_targets,
            head,
        )
        output.loss.backward()
        accumulate_head_gradients(head_model, head)
        with torch.no_grad():
            reported = torch.nn.functional.cross_entropy(output.query_logits, query_targets)
        gradient = all_embeddings.grad
        if gradient is None:  # a learner whose objective does not reach the embeddings
            gradient = torch.zeros_like(all_embeddings)
        return float(reported.item()), torch2xp(gradient)

    def _many_way_loss(
        self, examples: List[Example], embeddings: Floats2d
    ) -> Tuple[float, Floats2d]:
        """A many-way learner's loss on a batch (not an episode): every text
        against every class seen so far, by its gold label."""
        labels = []
        for eg in examples:
            positive = positive_labels(eg)
            if len(positive) != 1:
                raise ValueError(Errors.E011.format(n=len(positive), labels=positive))
            labels.append(positive[0])
        all_embeddings = xp2torch(embeddings, requires_grad=True)
        output = self.learner.batch_loss(all_embeddings, labels, self._head())
        output.loss.backward()
        return float(output.loss.item()), torch2xp(all_embeddings.grad)

    def add_label(self, label: str) -> int:
        """Few-shot labels are defined by their examples: use adapt()."""
        raise ValueError(Errors.E021.format(label=label))

    def remove_label(self, label: str) -> None:
        """Forget a label and its examples.

        label (str): The label to remove.
        """
        if isinstance(label, str):
            label = unicodedata.normalize("NFC", label)
        if label not in self.labels:
            raise ValueError(
                Errors.E009.format(label=label, name=self.name, labels=list(self.labels))
            )
        support_set = self._adaptation.support_set.remove(label)
        self._adaptation = build_adaptation(support_set, self.learner, self._head(), self._device())

    def adapt(
        self,
        data: SupportData,
        *,
        replace: bool = False,
        steps: Optional[int] = None,
        descriptions: Optional[Dict[str, str]] = None,
        deep_steps: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Learn labels from a few examples each, and from a description of
        each; the encoder is trained only with deep_steps > 0.

        Every example is encoded once and kept (as its embedding), so adapting
        in parts gives what adapting once with everything gives. A label's
        description (the text given in `descriptions`, else, with the
        use_label_names setting, its name made readable) is encoded and kept
        as one more example of it; a new description replaces the old. A
        label with a description needs no examples (zero-shot). The
        classifier is then built from all kept rows: the prototypes (or the
        learner's instant classifier) or, with `steps` > 0, a linear head
        fitted by that many inner-loop steps from the learner's start.
        Multi-label scores are calibrated on the kept rows. With deep_steps > 0
        the top layers of the component's own transformer first take that many
        steps on episodes drawn from the support set, starting from their
        weights before any deep adaptation, and every row is encoded with the
        adapted layers (so it needs the whole support set: replace=True, or
        no labels yet). Nothing changes unless it all succeeds.

        data (SupportData): A mapping label -> texts (str or Doc), or Examples
            whose cats give the labels.
        replace (bool): Forget all current labels first.
        steps (Optional[int]): Inner-loop steps; None: the component's
            adapt_steps setting, and if that is None the learner's own.
        descriptions (Optional[Dict[str, str]]): A text describing a label
            ('when will my card arrive'), for labels of `data` or new ones.
        deep_steps (Optional[int]): Deep-adaptation steps; None: the
            component's deep_adapt_steps setting.
        RETURNS (Dict[str, Any]): {"added": {label: n}, "updated": {label: n},
            "removed": [labels]}, n being the number of examples used.
        """
        steps = self.cfg["adapt_steps"] if steps is None else steps
        if steps is None:
            steps = self.learner.inner_steps
        check_steps("steps", steps)
        deep_steps = self.cfg["deep_adapt_steps"] if deep_steps is None else deep_steps
        check_steps("deep_steps", deep_steps)
        if steps > 0 and not self.cfg["exclusive_classes"]:
            raise ValueError(Errors.E032.format(steps=steps))
        if deep_steps > 0 and not self.cfg["exclusive_classes"]:
            raise ValueError(Errors.E039.format(steps=deep_steps))
        unknown_label = self.cfg["unknown_label"]
        given = collect_descriptions(descriptions, unknown_label)
        support = collect_support(
            data,
            exclusive_classes=self.cfg["exclusive_classes"],
            unknown_label=unknown_label,
            allow_no_examples=True,
        )
        base = SupportSet.empty() if replace else self._adaptation.support_set
        if deep_steps > 0 and base.labels:
            kept = ", ".join(repr(label) for label in base.labels[:5])
            kept += ", ..." if len(base.labels) > 5 else ""
            raise ValueError(Errors.E040.format(steps=deep_steps, labels=kept))
        described = self._descriptions(support, given, base)
        for label in [*support, *given]:
            if not support.get(label) and label not in described and label not in base.described:
                raise ValueError(Errors.E002.format(label=label))
        if not support and not given:
            raise ValueError(Errors.E001)
        labels, docs, is_description = self._support_docs(support, described)
        top = None
        if deep_steps > 0 or (replace and self._deep_start is not None):
            top = TopLayers(self.model.get_ref("encoder"), self.cfg["deep_adapt_layers"])
        # what the weights are now, to put back if anything below fails
        rollback = None if top is None else top.state([*(self._deep_start or ()), *top.parameters])
        deep_start = self._deep_start
        try:
            if top is not None and deep_start is not None:
                top.load(deep_start)  # the encoder as it was before deep adaptation
                deep_start = None
            if deep_steps > 0:
                assert top is not None
                deep_start = top.state()
                index = {label: i for i, label in enumerate(dict.fromkeys(labels))}
                lower_outputs = LowerLayerOutputs()
                fit_top_layers(top, self._begin_update, docs, [index[label] for label in labels],
                               is_description, len(index), steps=deep_steps,
                               learn_rate=self.cfg["deep_adapt_learn_rate"],
                               outputs=lower_outputs)  # fmt: skip
                # the support through the adapted layers, from the lower
                # layers' outputs the steps computed
                with frozen_lower_layers(top, lower_outputs):
                    encoded = self.embedder.embed_docs(docs, torch_only=True)
            else:
                encoded = self.embedder.embed_docs(docs)
            embeddings = prepare(encoded, self._head().metric)
            if base.labels and base.width != embeddings.shape[1]:
                raise ValueError(Errors.E020.format(stored=base.width, encoder=embeddings.shape[1]))
            adaptation = fit_adaptation(
                base.add(labels, embeddings.cpu().numpy(), is_description),
                self.learner,
                self._head(),
                self._device(),
                steps=steps,
                learn_rate=self.cfg["adapt_learn_rate"],
                calibrate=not self.cfg["exclusive_classes"],
                hold_out=self._decides_in_scope(),
            )
        except BaseException:
            if rollback is not None:
                top.load(rollback)
            raise
        counts = {label: len(support.get(label, ())) for label in [*support, *given]}
        result = {
            "added": {label: n for label, n in counts.items() if label not in base.labels},
            "updated": {label: n for label, n in counts.items() if label in base.labels},
            "removed": [label for label in self.labels if label not in adaptation.labels],
        }
        self._deep_start = deep_start
        self._adaptation = adaptation
        return result

    def _descriptions(
        self, support: Dict[str, List[Any]], given: Dict[str, str], base: SupportSet
    ) -> Dict[str, str]:
        """The descriptions this adapt() sets: those given and, with
        use_label_names, the readable name of each label of `support` that has
        no description yet (unless the name has no letters or digits)."""
        described = dict(given)
        if self.cfg["use_label_names"]:
            for label in support:
                name = readable_label(label)
                if label not in described and label not in base.described and name:
                    described[label] = name
        return described

    def _support_docs(
        self, support: Dict[str, List[Any]], descriptions: Dict[str, str]
    ) -> Tuple[List[str], List[Doc], List[bool]]:
        """Each row's label, doc and whether it is a description, the
        examples first; an empty doc is an error naming its label."""
        labels = [label for label, items in support.items() for _ in items]
        positions = [i for items in support.values() for i in range(len(items))]
        items = [item for items in support.values() for item in items]
        docs = self.embedder.make_docs(items + list(descriptions.values()))
        for label, position, doc in zip(labels, positions, docs):
            if len(doc) == 0:
                raise ValueError(Errors.E006.format(label=label, index=position))
        for (label, description), doc in zip(descriptions.items(), docs[len(items) :]):
            if len(doc) == 0:
                raise ValueError(Errors.E036.format(label=label, description=description))
        is_description = [False] * len(labels) + [True] * len(descriptions)
        return labels + list(descriptions), docs, is_description

    def fit_classifier(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        n_way: int,
        *,
        steps: Optional[int] = None,
        learn_rate: Optional[float] = None,
    ) -> Classifier:
        """A classifier for embedded support examples, fitted as adapt() fits
        one (for evaluations that encode once and adapt many times).

        support (torch.Tensor): (n_support, width) encoder outputs.
        support_labels (torch.Tensor): (n_support,) class indices 0..n_way-1.
        n_way (int): The number of classes.
        steps (Optional[int]): Inner-loop steps; None: as adapt() does.
        learn_rate (Optional[float]): Their step size; None: as adapt() does.
        RETURNS (Classifier): Maps query embeddings to logits.
        """
        steps = self.cfg["adapt_steps"] if steps is None else steps
        steps = self.learner.inner_steps if steps is None else steps
        learn_rate = self.cfg["adapt_learn_rate"] if learn_rate is None else learn_rate
        prepared = prepare(support, self._head().metric)
        return self.learner.adapt(
            prepared, support_labels, n_way, self._head(), steps=steps, learn_rate=learn_rate
        )

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Score a batch of examples: spaCy's textcat scores (cats_score,
        cats_macro_f, ...) once the component has labels; before any adapt(),
        episode accuracy on the examples' own labels (cats_episode_acc),
        adapting each episode as adapt() would.

        examples (Iterable[Example]): The examples to score.
        RETURNS (Dict[str, Any]): The scores.
        """
        examples = list(examples)
        validate_examples(examples, "FewShotTextCategorizer.score")
        labels = list(self.labels)
        if labels:
            unknown = self.cfg["unknown_label"]
            if unknown is not None:
                labels.append(unknown)
            missing = unknown_gold_labels(examples, labels)
            if missing:
                raise ValueError(Errors.E015.format(name=self.name, labels=missing, known=labels))
        return self.scorer(
            examples,
            labels=labels,
            multi_label=not self.cfg["exclusive_classes"],
            threshold=self.cfg["threshold"],
            embed=self.embedder.embed_docs,
            fit=self.fit_classifier,
            **kwargs,
        )

    def _head(self) -> MetricHead:
        return metric_head(self.model.get_ref("head"))

    def _device(self) -> torch.device:
        return xp2torch(self.model.ops.alloc1f(1)).device

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialize the model (loading the pretrained transformer, if any),
        set the inner-loop step sizes to the learner's initial ones, and forget
        all labels.

        get_examples (Callable[[], Iterable[Example]]): Function that returns a
            representative sample of gold-standard Example objects.
        nlp (Language): The current nlp object the component is part of.
        """
        validate_get_examples(get_examples, "FewShotTextCategorizer.initialize")
        if nlp is not None:
            self.nlp = nlp
            self.embedder.nlp = nlp
        docs = [eg.reference for eg in islice(get_examples(), 10)]
        try:
            self.model.initialize(X=docs)
        except (OSError, HFValidationError) as e:  # a model transformers cannot find
            raise ValueError(Errors.E029.format(name=self.name, error=str(e).rstrip("."))) from e
        set_inner_lr(self.model.get_ref("head"), self.learner.init_inner_lr)
        self._adaptation = Adaptation.empty()

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize the component, with its labels and support set.

        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (bytes): The serialized object.
        """
        self._validate_serialization_attrs()
        support_set = self._adaptation.support_set
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            "support": support_set.to_bytes,
        }
        if self._deep_start is not None:
            serialize["deep_start"] = lambda: start_to_bytes(self._deep_start)
        return to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from bytes; on any error it is left unchanged.

        bytes_data (bytes): The data to load from.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The loaded object.
        """
        self._validate_serialization_attrs()
        data: Dict[str, bytes] = {}
        deserialize = {key: (lambda b, key=key: data.__setitem__(key, b)) for key in SERIALIZED}
        try:
            from_bytes(bytes_data, deserialize, exclude)
        except Exception as e:
            raise ValueError(Errors.E013.format(name=self.name, file="bytes", error=e)) from e
        self._load(data, exclude, where="bytes")
        return self

    def to_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> None:
        """Save the component to a directory: cfg (JSON), model (thinc msgpack),
        support (msgpack of labels, embeddings and what was fitted on them) and,
        after deep adaptation, deep_start (msgpack of the adapted weights as
        they were before it).
        Each file is written under a temporary name and then renamed, so a
        failed save (a full disk) leaves the previous file whole.

        path (str / Path): Path to a directory, which will be created if it doesn't exist.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        """
        support_set = self._adaptation.support_set
        serialize = {
            "cfg": lambda p: write_atomically(p, srsly.json_dumps(self.cfg, indent=2).encode()),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: write_atomically(p, self.model.to_bytes()),
            "support": lambda p: write_atomically(p, support_set.to_bytes()),
            "deep_start": self._write_deep_start,
        }
        to_disk(path, serialize, exclude)

    def _write_deep_start(self, path: Path) -> None:
        if self._deep_start is not None:
            write_atomically(path, start_to_bytes(self._deep_start))
        elif path.exists():  # left by an earlier save to the same folder
            path.unlink()

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from a directory; a missing or damaged file gives
        an error naming it, and the component is left unchanged.

        path (str / Path): Path to a directory.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The modified object.
        """
        path = Path(path)
        data: Dict[str, bytes] = {}
        for key in ("cfg", "model", "support"):
            if key in exclude:
                continue
            if not (path / key).is_file():
                raise ValueError(Errors.E012.format(name=self.name, file=key, path=path))
            data[key] = (path / key).read_bytes()
        if "deep_start" not in exclude and (path / "deep_start").is_file():
            data["deep_start"] = (path / "deep_start").read_bytes()
        vocab_path = path / "vocab"
        load_vocab = None
        if "vocab" not in exclude and vocab_path.exists():
            load_vocab = lambda: self.vocab.from_disk(vocab_path, exclude=exclude)  # noqa: E731
        overrides = self._load_time_overrides(path.parent / "config.cfg")
        self._load(data, exclude, where=str(path), load_vocab=load_vocab, overrides=overrides)
        return self

    def _load_time_overrides(self, config_path: Path) -> Dict[str, Any]:
        """The settings given to spacy.load(..., config=...): those this
        component was built with that differ from the saved pipeline's
        config. They win over the saved cfg; the others come from it (it also
        holds what set_adaptation() changed after the config was written)."""
        if not config_path.is_file():
            return {}
        try:
            saved = Config().from_disk(config_path, interpolate=False)
            saved_settings = saved["components"][self.name]
        except Exception:
            return {}
        return {
            key: self.cfg[key]
            for key, value in self._configured.items()
            if key in saved_settings and saved_settings[key] != value
        }

    def _load(
        self,
        data: Dict[str, bytes],
        exclude: Iterable[str],
        where: str,
        load_vocab: Optional[Callable[[], Any]] = None,
        overrides: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Check everything that can be checked before changing anything; load
        the model and vocab, putting them back as they were if either fails;
        then swap in the new settings and support set."""
        cfg, support_set = self.cfg, self._adaptation.support_set
        if "cfg" in data:
            try:
                # the standard library's parser: srsly's reads 0.7 as 0.7000000000000001
                cfg = json.loads(data["cfg"])
                for key in SETTINGS_ADDED_LATER:
                    if isinstance(cfg, dict) and key not in cfg:
                        # saved before the setting existed: the config's value
                        cfg[key] = self.cfg[key]
                if not isinstance(cfg, dict) or set(cfg) != set(self.cfg):
                    raise ValueError(f"expected the settings {sorted(self.cfg)}")
                check_settings(cfg)
                cfg = {**cfg, **(overrides or {})}
            except ValueError as e:
                raise ValueError(Errors.E013.format(name=self.name, file="cfg", error=e)) from e
        if "support" in data:
            try:
                # the cosine metric keeps unit-length rows (models.metric.prepare)
                metric = self.model.get_ref("head").attrs.get("metric")
                support_set = SupportSet.from_bytes(data["support"], unit_length=metric == "cosine")
            except ValueError as e:
                raise ValueError(Errors.E013.format(name=self.name, file="support", error=e)) from e
        deep_start = None
        if "deep_start" in data:
            try:
                deep_start = start_from_bytes(data["deep_start"])
            except ValueError as e:
                raise ValueError(
                    Errors.E013.format(name=self.name, file="deep_start", error=e)
                ) from e
        # E041 / E042 / E043 before anything changes
        backend = make_backend(cfg["inference_backend"], self.model.get_ref("encoder"))
        check_meta_train_layers(cfg["meta_train_layers"], self.model.get_ref("encoder"))
        if cfg["unknown_label"] in support_set.labels:
            error = ValueError(Errors.E010.format(label=cfg["unknown_label"]))
            raise ValueError(Errors.E013.format(name=self.name, file="cfg", error=error))
        if "model" in data:
            problem = find_code_in_model(data["model"])
            if problem:
                raise ValueError(Errors.E033.format(name=self.name, problem=problem, file="model"))
        if "vocab" in data and "vocab" not in exclude:
            load_vocab = lambda: self.vocab.from_bytes(data["vocab"], exclude=exclude)  # noqa: E731
        model_backup = _model_bytes_or_none(self.model)
        vocab_backup = self.vocab.to_bytes() if load_vocab is not None else None
        try:
            if "model" in data:
                try:
                    load_model_strictly(self.model, data["model"])
                    check_model_values(self.model)
                except Exception as e:
                    raise ValueError(
                        Errors.E013.format(name=self.name, file="model", error=e)
                    ) from e
            if deep_start is not None:
                try:
                    check_start(self.model.get_ref("encoder"), deep_start)
                except ValueError as e:
                    raise ValueError(
                        Errors.E013.format(name=self.name, file="deep_start", error=e)
                    ) from e
            if load_vocab is not None:
                load_vocab()
            adaptation = build_adaptation(support_set, self.learner, self._head(), self._device())
        except Exception:
            if model_backup is not None:
                self.model.from_bytes(model_backup)
            if vocab_backup is not None:
                self.vocab.from_bytes(vocab_backup)
            raise
        if cfg["inference_backend"] != self.cfg["inference_backend"]:
            self.embedder.backend = backend
        self.cfg = normalized_settings(cfg)
        self.embedder.batch_size = self.cfg["batch_size"]
        self._deep_start = deep_start
        self._adaptation = adaptation


# what spacy-transformers warns when saved weights do not fit the transformer,
# before loading them with strict=False (leaving some weights at random)
PARTIAL_WEIGHTS_WARNING = "Error loading saved torch state_dict"


def load_model_strictly(model: Model, model_bytes: bytes) -> None:
    """model.from_bytes, refusing weights that do not fit (which
    spacy-transformers would load partially, with a warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.from_bytes(model_bytes)
    for warning in caught:
        if PARTIAL_WEIGHTS_WARNING in str(warning.message):
            raise ValueError("the transformer's saved weights do not fit its architecture")
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def check_model_values(model: Model) -> None:
    """Refuse weights that are not float32 or hold NaN or infinity, a head of
    the wrong shape or an unknown metric."""
    head = model.get_ref("head")
    check_metric(head.attrs.get("metric"))
    for name, shape in (("log_scale", (1,)), ("log_inner_lr", (2,))):
        if head.has_param(name) and head.get_param(name).shape != shape:
            raise ValueError(
                f"the head's {name} has shape {head.get_param(name).shape}, not {shape}"
            )
    xp = model.ops.xp
    for layer in model.walk():
        for name in layer.param_names:
            if not layer.has_param(name):
                continue
            param = layer.get_param(name)
            if param.dtype != xp.float32:
                raise ValueError(
                    f"the weights '{name}' of layer '{layer.name}' are {param.dtype}, not float32"
                )
            if not bool(xp.isfinite(param).all()):
                raise ValueError(
                    f"the weights '{name}' of layer '{layer.name}' hold NaN or infinity"
                )
        for shim in layer.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                for name, tensor in module.state_dict().items():
                    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                        raise ValueError(f"the transformer's weights '{name}' hold NaN or infinity")


def _model_bytes_or_none(model: Model) -> Optional[bytes]:
    """The model's bytes, or None for a model that has nothing to lose yet
    (not initialized, as in spacy.load before from_disk)."""
    try:
        return model.to_bytes()
    except Exception:
        return None


def check_settings(cfg: Dict[str, Any]) -> None:
    """Check the component's settings, from its config or a saved cfg."""
    exclusive = cfg["exclusive_classes"]
    if not isinstance(exclusive, bool):
        raise ValueError(
            Errors.E019.format(
                setting="exclusive_classes", requirement="a boolean", value=exclusive
            )
        )
    threshold = cfg["threshold"]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(
            Errors.E019.format(setting="threshold", requirement="in [0, 1]", value=threshold)
        )
    if not isinstance(cfg["use_label_names"], bool):
        raise ValueError(
            Errors.E019.format(
                setting="use_label_names", requirement="a boolean", value=cfg["use_label_names"]
            )
        )
    batch_size = cfg["batch_size"]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            Errors.E019.format(
                setting="batch_size", requirement="an integer >= 1", value=batch_size
            )
        )
    if cfg["unknown_label"] is not None:
        check_label(cfg["unknown_label"])
    quantile = cfg["in_scope_quantile"]
    if quantile is not None and (
        isinstance(quantile, bool)
        or not isinstance(quantile, (int, float))
        or not 0.0 <= quantile < 1.0
    ):
        raise ValueError(
            Errors.E019.format(
                setting="in_scope_quantile", requirement="null or in [0, 1)", value=quantile
            )
        )
    if cfg["inference_backend"] not in INFERENCE_BACKENDS:
        raise ValueError(
            Errors.E019.format(
                setting="inference_backend",
                requirement="one of " + ", ".join(f"'{b}'" for b in INFERENCE_BACKENDS),
                value=cfg["inference_backend"],
            )
        )
    check_steps("deep_adapt_steps", cfg["deep_adapt_steps"])
    check_learn_rate("deep_adapt_learn_rate", cfg["deep_adapt_learn_rate"])
    layers = cfg["deep_adapt_layers"]
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(
            Errors.E019.format(
                setting="deep_adapt_layers", requirement="an integer >= 1", value=layers
            )
        )
    meta_layers = cfg["meta_train_layers"]
    if meta_layers is not None and (
        isinstance(meta_layers, bool) or not isinstance(meta_layers, int) or meta_layers < 1
    ):
        raise ValueError(
            Errors.E019.format(
                setting="meta_train_layers",
                requirement="null or an integer >= 1",
                value=meta_layers,
            )
        )
    steps, learn_rate = cfg["adapt_steps"], cfg["adapt_learn_rate"]
    if steps is not None:
        check_steps("adapt_steps", steps)
    if learn_rate is not None:
        check_learn_rate("adapt_learn_rate", learn_rate)


def check_meta_train_layers(n_layers: Optional[int], encoder: Model) -> None:
    """meta_train_layers needs a transformer of the component's own (E043);
    its layer count is checked at the first update(), once the weights are in."""
    if n_layers is not None and find_transformer_shim(encoder) is None:
        raise ValueError(Errors.E043.format(n_layers=n_layers))


# Bounds on adaptation: inner-loop steps cost a few milliseconds each on a
# linear head, so 10,000 is minutes; step sizes beyond 1e6 only overflow.
MAX_STEPS = 10_000
MAX_LEARN_RATE = 1e6


def check_steps(setting: str, steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise ValueError(
            Errors.E019.format(
                setting=setting, requirement=f"an integer in [0, {MAX_STEPS}]", value=steps
            )
        )


def check_learn_rate(setting: str, learn_rate: Any) -> None:
    if (
        isinstance(learn_rate, bool)
        or not isinstance(learn_rate, (int, float))
        or not 0 < learn_rate <= MAX_LEARN_RATE
    ):
        raise ValueError(
            Errors.E019.format(
                setting=setting,
                requirement=f"a number in (0, {MAX_LEARN_RATE:g}]",
                value=learn_rate,
            )
        )


def normalized_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    cfg = dict(cfg)
    if cfg["unknown_label"] is not None:  # labels are kept in NFC
        cfg["unknown_label"] = unicodedata.normalize("NFC", cfg["unknown_label"])
    cfg["threshold"] = float(cfg["threshold"])
    if cfg["in_scope_quantile"] is not None:
        cfg["in_scope_quantile"] = float(cfg["in_scope_quantile"])
    if cfg["adapt_learn_rate"] is not None:
        cfg["adapt_learn_rate"] = float(cfg["adapt_learn_rate"])
    cfg["deep_adapt_learn_rate"] = float(cfg["deep_adapt_learn_rate"])
    return cfg
