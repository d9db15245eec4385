"""The few_shot_textcat component: a text classifier whose labels come from a
few examples each (adapt()), over an encoder that meta-pretraining (update())
has taught to separate classes it has never seen."""

import contextlib
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
import torch
from huggingface_hub.errors import HFValidationError
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import SimpleFrozenList
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate, torch2xp, xp2torch
from thinc.types import Floats2d

from ..adaptation.adapt import adapt_support
from ..adaptation.snapshot import Adaptation, build_adaptation
from ..adaptation.support import (
    SupportData,
)
from ..adaptation.support_set import SupportSet
from ..encoding.embedding import DocEmbedder
from ..encoding.onnx_inference import TORCH_BACKEND, make_backend
from ..encoding.top_layers import LowerLayerOutputs, TopLayers, frozen_lower_layers
from ..errors import Errors, Warnings
from ..learners.base import Learner
from ..models.classifiers import Classifier
from ..models.head import metric_head, set_inner_lr
from ..models.metric import MetricHead, prepare
from ..training.loss import episode_loss, many_way_loss
from ..training.scoring import EPISODE_ACC, unknown_gold_labels
from . import serialization
from .settings import (
    check_meta_train_layers,
    check_settings,
    normalized_settings,
)

# nlp.pipe(n_process > 1) forks workers; torch's thread pool, once started in the
# parent, deadlocks in a forked child. Children compute with one thread each, as
# PyTorch's DataLoader workers do.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


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
# and 10 shots, frozen encoder; benchmarks/probe_out_of_scope.py): the largest
# quantile whose in-scope accuracy stayed within 2 points of never abstaining
# both with the prototypes and with 100 head steps (the head's held-out
# scores: 1.47 points at 0.03, 2.57 at 0.04)
DEFAULT_IN_SCOPE_QUANTILE = 0.03
# chosen on meta-dev sets (CLINC150 banking + credit cards, HINT3), frozen
# all-MiniLM-L6-v2: 10 steps of 3e-5 on the top 2 layers (docs/adaptation.md);
# off by default (it costs seconds per step)
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
        """Initialize the component. The settings are the factory's (see
        make_few_shot_textcat), checked here (E019, E030, E043).

        vocab (Vocab): The shared vocabulary.
        model (thinc.api.Model): The encoder and prototype head.
        name (str): The component instance name, used for losses and scores.
        nlp (Optional[Language]): The pipeline; adapt() uses its tokenizer, and
            the upstream component when the encoder is a listener.
        learner (Learner): Turns an episode into a loss, a support set into a classifier.
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
            embeddings, backprop = self.embedder.begin_update([eg.predicted for eg in examples])
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
            return many_way_loss(self.learner, self.head, examples, embeddings)
        return episode_loss(self.learner, self.model.get_ref("head"), examples, embeddings)

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
        self._adaptation = build_adaptation(support_set, self.learner, self.head, self.device)

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
        adapted = adapt_support(
            data,
            base=SupportSet.empty() if replace else self._adaptation.support_set,
            current_labels=self.labels,
            deep_start=self._deep_start,
            replace=replace,
            steps=self.cfg["adapt_steps"] if steps is None else steps,
            descriptions=descriptions,
            deep_steps=self.cfg["deep_adapt_steps"] if deep_steps is None else deep_steps,
            settings=self.cfg,
            learner=self.learner,
            head=self.head,
            device=self.device,
            embedder=self.embedder,
            hold_out=self._decides_in_scope(),
        )
        self._deep_start = adapted.deep_start
        self._adaptation = adapted.adaptation
        return adapted.changes

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
        prepared = prepare(support, self.head.metric)
        return self.learner.adapt(
            prepared, support_labels, n_way, self.head, steps=steps, learn_rate=learn_rate
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

    @property
    def head(self) -> MetricHead:
        """The meta-learned head: its temperature, metric and step sizes."""
        return metric_head(self.model.get_ref("head"))

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (the CPU, or the GPU of --gpu-id)."""
        return xp2torch(self.model.ops.alloc1f(1)).device

    @property
    def deep_start(self) -> Optional[Dict[str, numpy.ndarray]]:
        """The weights deep adaptation changed, as they were before it (what a
        later deep adaptation starts from); None while the encoder is as loaded."""
        return self._deep_start

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
        return serialization.component_to_bytes(self, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from bytes; on any error it is left unchanged.

        bytes_data (bytes): The data to load from.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The loaded object.
        """
        self._validate_serialization_attrs()
        data = serialization.read_bytes(self.name, bytes_data, exclude)
        self._apply(serialization.load(self, data, exclude))
        return self

    def to_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> None:
        """Save the component to a directory: cfg (JSON), model (thinc msgpack),
        support (msgpack of labels, embeddings and what was fitted on them) and,
        after deep adaptation, deep_start (msgpack of the adapted weights as
        they were before it). Each file is written under a temporary name and
        then renamed, so a failed save (a full disk) leaves the previous file
        whole.

        path (str / Path): Path to a directory, which will be created if it doesn't exist.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        """
        serialization.component_to_disk(self, Path(path), exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from a directory; a missing or damaged file gives
        an error naming it, and the component is left unchanged. Settings
        given to spacy.load(..., config=...) win over the saved ones.

        path (str / Path): Path to a directory.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The modified object.
        """
        path = Path(path)
        data, load_vocab = serialization.read_disk(self, path, exclude)
        overrides = serialization.load_time_overrides(
            self.name, self.cfg, self._configured, path.parent / "config.cfg"
        )
        self._apply(
            serialization.load(self, data, exclude, load_vocab=load_vocab, overrides=overrides)
        )
        return self

    def _apply(self, loaded: "serialization.LoadedState") -> None:
        """Take the settings, support set and deep-adaptation start that
        serialization.load() checked (the model and vocab are loaded then)."""
        if loaded.backend is not None:
            self.embedder.backend = loaded.backend
        self.cfg = loaded.cfg
        self.embedder.batch_size = self.cfg["batch_size"]
        self._deep_start = loaded.deep_start
        self._adaptation = loaded.adaptation
