"""The few_shot_textcat component: a text classifier whose labels come from a
few examples each (adapt()), over an encoder that meta-pretraining (update())
has taught to separate classes it has never seen."""

import os
import unicodedata
import warnings
from itertools import islice
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Tuple,
)

import numpy
import torch
from huggingface_hub.errors import HFValidationError
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate, torch2xp, xp2torch
from thinc.types import Floats2d

from ..adaptation.adapt import adapt_support, fit_classifier
from ..adaptation.snapshot import Adaptation, build_adaptation, decides_in_scope, out_of_scope
from ..adaptation.support import SupportData
from ..adaptation.support_set import SupportSet
from ..encoding import forked_workers  # noqa: F401  (nlp.pipe's forked workers)
from ..encoding.embedding import DocEmbedder
from ..encoding.onnx_inference import TORCH_BACKEND, make_backend
from ..encoding.top_layers import LowerLayerOutputs, training_layers
from ..errors import Errors, Warnings
from ..learners.base import Learner
from ..models.classifiers import Classifier
from ..models.head import metric_head, set_inner_lr
from ..models.metric import MetricHead
from ..training.loss import episode_loss, many_way_loss
from ..training.scoring import check_gold_labels
from .serialization import LoadedState, SavedPipe
from .settings import (
    DEFAULT_ADAPT_LEARN_RATE,
    DEFAULT_ADAPT_STEPS,
    DEFAULT_DEEP_ADAPT_LAYERS,
    DEFAULT_DEEP_ADAPT_LEARN_RATE,
    DEFAULT_IN_SCOPE_QUANTILE,
    DEFAULT_LABEL_BALANCE,
    DEFAULT_LOGIT_ADJUSTMENT_TAU,
    check_meta_train_layers,
    check_settings,
    normalized_settings,
)


class CatScores(NamedTuple):
    """predict()'s output: the scores and the labels they belong to."""

    labels: Tuple[str, ...]
    scores: Floats2d  # (n_docs, n_labels)
    # (n_docs,) whether each doc is in scope, where the component decides it
    in_scope: Optional[Any] = None


class FewShotTextCategorizer(SavedPipe):
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
        adapt_steps: Optional[int] = DEFAULT_ADAPT_STEPS,
        adapt_learn_rate: Optional[float] = DEFAULT_ADAPT_LEARN_RATE,
        label_balance: str = DEFAULT_LABEL_BALANCE,
        logit_adjustment_tau: float = DEFAULT_LOGIT_ADJUSTMENT_TAU,
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
            "label_balance": label_balance,
            "logit_adjustment_tau": logit_adjustment_tau,
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
            filled_scores, filled_in_scope = adaptation.decide(embeddings, self.cfg)
            scores = scores.to(embeddings.device)
            scores[filled] = filled_scores
            if filled_in_scope is not None:
                in_scope = numpy.zeros(len(docs), dtype=bool)  # empty docs: out of scope
                in_scope[filled] = filled_in_scope.cpu().numpy()
        return CatScores(adaptation.labels, torch2xp(scores), in_scope)

    def classify_embeddings(self, embeddings: Floats2d) -> CatScores:
        """What predict() gives for the docs behind encoder outputs (for
        evaluations that encode a test set once and score it against many
        adaptations).

        embeddings (Floats2d): (n_docs, width) outputs of the encoder.
        RETURNS (CatScores): The labels, (n_docs, n_labels) scores and the
            in-scope decisions (None where the component makes none).
        """
        adaptation = self._adaptation
        scores, in_scope = adaptation.decide(xp2torch(embeddings), self.cfg)
        in_scope = None if in_scope is None else in_scope.cpu().numpy()
        return CatScores(adaptation.labels, torch2xp(scores), in_scope)

    def out_of_scope(self, scores: CatScores) -> List[bool]:
        """Whether each scored doc is out of scope: its top score is below the
        threshold, or (with in_scope_quantile) its in-scope score is below
        nearly all of the support examples' held-out ones (Adaptation.in_scope)."""
        values = self.model.ops.to_numpy(scores.scores)
        return out_of_scope(values, scores.in_scope, self.cfg["threshold"])

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
        """Learn from one episode of the episode batcher (the meta-learner's
        loss, backpropagated into the head and the encoder).

        examples (Iterable[Example]): One episode, marked by the episode batcher.
        drop (float): The dropout rate.
        sgd (thinc.api.Optimizer): The optimizer.
        losses (Dict[str, float]): Optional record of the loss, by component name.
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
        encoder, n_layers = self.model.get_ref("encoder"), self.cfg["meta_train_layers"]
        with training_layers(encoder, n_layers, self._lower_outputs):
            embeddings, backprop = self.embedder.begin_update([eg.predicted for eg in examples])
        loss, d_embeddings = self.get_loss(examples, embeddings)
        backprop(d_embeddings)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

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
        """The meta-learner's objective on one episode (reported as the query
        cross-entropy of its adapted classifier, the same for every learner)
        and its gradient for the embeddings; the head's go to its parameters.

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
        """Learn labels from a few examples each (docs/adaptation.md). Every
        example is encoded once and kept, so adapting in parts gives what
        adapting once with everything gives; a label's description (or, with
        use_label_names, its name made readable) is one more example of it and
        is enough alone. The classifier is built from all kept rows: the
        learner's instant one or, with `steps` > 0, a linear head fitted by
        that many inner-loop steps. With `deep_steps` > 0 the transformer's top
        layers first train on the support set, which must then be whole
        (replace=True, or no labels yet). Nothing changes unless all succeeds.
        A component never initialized is initialized first (initialize()).

        data (SupportData): A mapping label -> texts (str or Doc), or Examples
            whose cats give the labels.
        replace (bool): Forget all current labels first.
        steps (Optional[int]): Inner-loop steps; None: the adapt_steps
            setting (exclusive classes; multi-label takes 0), and if that is
            None the learner's own.
        descriptions (Optional[Dict[str, str]]): A text describing a label.
        deep_steps (Optional[int]): Deep-adaptation steps; None: the
            deep_adapt_steps setting.
        RETURNS (Dict[str, Any]): {"added": {label: n}, "updated": {label: n},
            "removed": [labels]}, n being the number of examples used.
        """
        if not self.is_initialized:  # added to a pipeline and never initialized
            self.initialize(nlp=self.nlp)
        adapted = adapt_support(
            data,
            base=SupportSet.empty() if replace else self._adaptation.support_set,
            current_labels=self.labels,
            deep_start=self._deep_start,
            replace=replace,
            steps=steps,
            descriptions=descriptions,
            deep_steps=self.cfg["deep_adapt_steps"] if deep_steps is None else deep_steps,
            settings=self.cfg,
            learner=self.learner,
            head=self.head,
            device=self.device,
            embedder=self.embedder,
            hold_out=decides_in_scope(self.cfg),
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
        """A classifier for (n_support, width) encoder outputs labelled
        0..n_way-1, fitted as adapt() fits one (for evaluations that encode
        once and adapt many times); `steps` and `learn_rate` as adapt()'s."""
        return fit_classifier(
            self.learner,
            self.head,
            self.cfg,
            support,
            support_labels,
            n_way,
            steps=steps,
            learn_rate=learn_rate,
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
            check_gold_labels(examples, labels, self.name)
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
    def is_initialized(self) -> bool:
        """Whether the model's weights are there: initialize() or loading put
        them in; adapt() calls initialize() first where they are not."""
        return bool(self.model.get_ref("head").has_param("log_scale"))

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
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialize the model (loading the pretrained transformer), set the
        inner-loop step sizes to the learner's initial ones, forget all labels.
        The component needs no examples (its labels come from adapt()), so
        `fs.initialize()` alone adds it to a pipeline whose other components
        stay as they are.

        get_examples (Optional[Callable[[], Iterable[Example]]]): Function that
            returns a sample of Example objects, or none.
        nlp (Language): The current nlp object the component is part of.
        """
        examples = []
        if get_examples is not None:
            if not callable(get_examples):
                validate_get_examples(get_examples, "FewShotTextCategorizer.initialize")
            examples = list(islice(get_examples(), 10))
            validate_examples(examples, "FewShotTextCategorizer.initialize")
        if nlp is not None:
            self.nlp = nlp
            self.embedder.nlp = nlp
        docs = [eg.reference for eg in examples] or [Doc(self.vocab, words=["x", "y", "z"])]
        try:
            self.model.initialize(X=docs)
        except (OSError, HFValidationError) as e:  # a model transformers cannot find
            raise ValueError(Errors.E029.format(name=self.name, error=str(e).rstrip("."))) from e
        set_inner_lr(self.model.get_ref("head"), self.learner.init_inner_lr)
        self._adaptation = Adaptation.empty()

    def _apply(self, loaded: LoadedState) -> None:
        """Take the settings, support set and deep-adaptation start that
        loading checked (the model and vocab are loaded then)."""
        if loaded.backend is not None:
            self.embedder.backend = loaded.backend
        self.cfg = loaded.cfg
        self.embedder.batch_size = self.cfg["batch_size"]
        self._deep_start = loaded.deep_start
        self._adaptation = loaded.adaptation
