"""The few_shot_textcat component: a text classifier whose labels come from a
few examples each (adapt()), over an encoder that meta-pretraining (update())
has taught to separate classes it has never seen."""

import os
import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import SimpleFrozenList, from_bytes, to_bytes, to_disk
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate, torch2xp, xp2torch

from ..episodes import positive_labels, split_episode
from ..errors import Errors, Warnings
from ..learners.base import Learner
from ..models.head import accumulate_head_gradients, metric_head
from ..models.metric import LinearHead, MetricHead, prepare
from ..prototypes import Prototypes
from ..scoring import EPISODE_ACC, unknown_gold_labels

# nlp.pipe(n_process > 1) forks workers; torch's thread pool, once started in the
# parent, deadlocks in a forked child. Children compute with one thread each, as
# PyTorch's DataLoader workers do.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

SupportData = Union[Mapping[str, Sequence[Union[str, Doc]]], Iterable[Example]]

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
@architectures = "spacy_metalearn.PrototypeHead.v1"
metric = "cosine"
init_scale = 10.0
init_bias = -5.0
init_inner_lr = 10.0
"""
DEFAULT_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "few_shot_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": DEFAULT_MODEL,
        "learner": {"@meta_learners": "spacy_metalearn.ProtoNet.v1"},
        "exclusive_classes": True,
        "threshold": None,
        "unknown_label": None,
        "batch_size": 64,
        "adapt_steps": None,
        "adapt_learn_rate": None,
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
    batch_size: int,
    adapt_steps: Optional[int],
    adapt_learn_rate: Optional[float],
    scorer: Callable,
) -> "FewShotTextCategorizer":
    """Create a few_shot_textcat component.

    model (thinc.api.Model): The encoder and prototype head.
    learner (Learner): The meta-learner that turns an episode into a loss.
    exclusive_classes (bool): One label per doc (softmax) or independent labels (sigmoid).
    threshold (Optional[float]): Score below which a label is not chosen;
        None means 0.0 when exclusive, 0.5 otherwise.
    unknown_label (Optional[str]): Name of a label set to 1.0 when no label
        reaches the threshold (out of scope), or None.
    batch_size (int): Docs encoded at once by adapt() and the scorer.
    adapt_steps (Optional[int]): Inner-loop steps adapt() runs on the support
        set by default; None means the learner's own (0 for ProtoNet).
    adapt_learn_rate (Optional[float]): Step size of those inner-loop steps;
        None means the learner's meta-learned one.
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
        batch_size=batch_size,
        adapt_steps=adapt_steps,
        adapt_learn_rate=adapt_learn_rate,
        scorer=scorer,
    )


class FewShotTextCategorizer(TrainablePipe):
    """Classify docs by their distance to class prototypes made from a few
    examples per label.

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
        batch_size: int = 64,
        adapt_steps: Optional[int] = None,
        adapt_learn_rate: Optional[float] = None,
        scorer: Callable,
    ) -> None:
        """Initialize the component.

        vocab (Vocab): The shared vocabulary.
        model (thinc.api.Model): The encoder and prototype head.
        name (str): The component instance name, used for losses and scores.
        nlp (Optional[Language]): The pipeline; adapt() uses its tokenizer, and
            the upstream component when the encoder is a listener.
        learner (Learner): Turns an episode into a loss for update().
        exclusive_classes (bool): Softmax over labels (True) or independent sigmoids.
        threshold (Optional[float]): Score below which a label is not chosen.
        unknown_label (Optional[str]): Label set when no label is chosen, or None.
        batch_size (int): Docs encoded at once.
        adapt_steps (Optional[int]): adapt()'s default inner-loop steps, or
            None for the learner's own.
        adapt_learn_rate (Optional[float]): Inner-loop step size at adapt(),
            or None for the learner's meta-learned one.
        scorer (Callable): The scoring method.
        """
        if threshold is None:
            threshold = 0.0 if exclusive_classes else 0.5
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(
                Errors.E019.format(setting="threshold", requirement="in [0, 1]", value=threshold)
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                Errors.E019.format(
                    setting="batch_size", requirement="an integer >= 1", value=batch_size
                )
            )
        if unknown_label is not None:
            _check_label(unknown_label)
        if not name or name.startswith(".") or any(sep in name for sep in ("/", "\\", os.sep)):
            # nlp.to_disk() saves the component in a folder of this name
            raise ValueError(Errors.E030.format(name=name))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.nlp = nlp
        self.learner = learner
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "exclusive_classes": exclusive_classes,
            "threshold": float(threshold),
            "unknown_label": unknown_label,
            "batch_size": batch_size,
        }
        self.set_adaptation(adapt_steps, adapt_learn_rate)
        self._prototypes = Prototypes.empty()
        self._warned_no_labels = False

    def set_adaptation(self, steps: Optional[int], learn_rate: Optional[float]) -> None:
        """Set how adapt() fits the support set by default: `steps` inner-loop
        steps (None: the learner's own) of size `learn_rate` (None: the
        learner's meta-learned one). Saved with the pipeline."""
        _check_adaptation(steps, learn_rate)
        self.cfg["adapt_steps"] = steps
        self.cfg["adapt_learn_rate"] = None if learn_rate is None else float(learn_rate)

    @property
    def labels(self) -> tuple:
        """RETURNS (Tuple[str]): The labels, in the order of the scores."""
        return self._prototypes.labels

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def support_counts(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): The number of support examples behind each label."""
        return {label: int(n) for label, n in zip(self.labels, self._prototypes.counts)}

    def predict(self, docs: Iterable[Doc]):
        """Score docs against the prototypes, without modifying them.

        docs (Iterable[Doc]): The documents to predict.
        RETURNS (Optional[Floats2d]): (n_docs, n_labels) scores; empty docs
            score 0.0 for every label. None when there are no labels yet.
        """
        docs = list(docs)
        if not self.labels:
            if not self._warned_no_labels:
                warnings.warn(Warnings.W001.format(name=self.name), stacklevel=2)
                self._warned_no_labels = True
            return None
        xp = self.model.ops.xp
        scores = xp.zeros((len(docs), len(self.labels)), dtype="float32")
        filled = [i for i, doc in enumerate(docs) if len(doc)]
        if filled:
            embeddings = self.model.get_ref("encoder").predict([docs[i] for i in filled])
            scores[xp.asarray(filled)] = self.score_embeddings(embeddings)
        return scores

    def score_embeddings(self, embeddings):
        """Scores of the current labels for encoder outputs, as predict() gives
        them for the docs behind them (for evaluations that encode a test set
        once and score it against many adaptations).

        embeddings (Floats2d): (n_docs, width) outputs of the encoder.
        RETURNS (Floats2d): (n_docs, n_labels) scores.
        """
        prototypes = self.model.ops.asarray2f(self._prototypes.means)
        embeddings = self.model.ops.asarray2f(embeddings)
        if embeddings.shape[1] != prototypes.shape[1]:
            raise ValueError(
                Errors.E020.format(stored=prototypes.shape[1], encoder=embeddings.shape[1])
            )
        logits = self._logits(embeddings, prototypes)
        if self.cfg["exclusive_classes"]:
            return self.model.ops.softmax(logits)
        return self.model.ops.sigmoid(logits)

    def _logits(self, embeddings, prototypes):
        """Prototype distances, or the linear head that adapt(steps>0) fitted."""
        store = self._prototypes
        if store.head_weight is None or store.head_bias is None:
            return self.model.get_ref("head").predict((embeddings, prototypes))
        ops = self.model.ops
        fitted = LinearHead(
            xp2torch(ops.asarray2f(store.head_weight)), xp2torch(ops.asarray1f(store.head_bias))
        )
        with torch.no_grad():
            return torch2xp(fitted.logits(self._head(), xp2torch(embeddings)))

    def set_annotations(self, docs: Iterable[Doc], scores) -> None:
        """Write the scores to doc.cats.

        docs (Iterable[Doc]): The documents to modify.
        scores: The scores to set, produced by predict().
        """
        if scores is None:
            return
        scores = self.model.ops.to_numpy(scores)
        unknown = self.cfg["unknown_label"]
        for doc, row in zip(docs, scores):
            for label, score in zip(self.labels, row):
                doc.cats[label] = float(score)
            if unknown is not None:
                out_of_scope = len(doc) == 0 or row.max() < self.cfg["threshold"]
                doc.cats[unknown] = 1.0 if out_of_scope else 0.0

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
            Updated using the component name as the key.
        RETURNS (Dict[str, float]): The updated losses dictionary.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "FewShotTextCategorizer.update")
        set_dropout_rate(self.model, drop)
        embeddings, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_embeddings = self.get_loss(examples, embeddings)
        backprop(d_embeddings)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], embeddings) -> tuple:
        """The meta-learner's loss on one episode, and its gradient with respect
        to the embeddings. The head's parameters have no backprop of their own
        here: their gradients are accumulated into the head as a side effect.

        examples (Iterable[Example]): The episode, marked by the episode batcher.
        embeddings (Floats2d): The encoder's output for the examples' docs.
        RETURNS (Tuple[float, Floats2d]): The loss and the gradient.
        """
        support, support_labels, query, query_labels = split_episode(list(examples))
        head_model = self.model.get_ref("head")
        head = metric_head(head_model, requires_grad=True)
        all_embeddings = xp2torch(embeddings, requires_grad=True)
        device = all_embeddings.device
        output = self.learner(
            all_embeddings[support],
            torch.tensor(support_labels, device=device),
            all_embeddings[query],
            torch.tensor(query_labels, device=device),
            head,
        )
        output.loss.backward()
        accumulate_head_gradients(head_model, head)
        return float(output.loss.item()), torch2xp(all_embeddings.grad)

    def add_label(self, label: str) -> int:
        """Few-shot labels are defined by their examples: use adapt()."""
        raise ValueError(Errors.E021.format(label=label))

    def remove_label(self, label: str) -> None:
        """Forget a label and its prototype.

        label (str): The label to remove.
        """
        if label not in self.labels:
            raise ValueError(
                Errors.E009.format(label=label, name=self.name, labels=list(self.labels))
            )
        self._prototypes = self._prototypes.remove(label)

    def adapt(
        self, data: SupportData, *, replace: bool = False, steps: Optional[int] = None
    ) -> Dict[str, Any]:
        """Learn labels from a few examples each, with no training of the
        encoder: each label's prototype is the mean embedding of its examples.
        New labels are added; examples for an existing label refine its
        prototype (adapting twice with halves equals adapting once with all).
        With steps > 0, the learner's inner loop then fits a linear head to the
        support set (starting from the prototypes for ProtoNet, Matching
        Networks and Proto-MAML; from the meta-learned init for MAML and
        Reptile). Atomic: on any error the component is left unchanged.

        data (Union[Mapping[str, Sequence[Union[str, Doc]]], Iterable[Example]]):
            label -> example texts or Docs, or Examples whose cats give the labels.
        replace (bool): Forget all current labels first.
        steps (Optional[int]): Inner-loop steps; None means the component's
            adapt_steps setting, or if that is None the learner's own (0 for
            ProtoNet and Matching Networks). 0 is the instant prototype
            path. With steps > 0 the data must cover every label (or replace=True).
        RETURNS (Dict[str, Any]): {"added": {label: n}, "updated": {label: n},
            "removed": [labels]}, n being the number of examples used.
        """
        if steps is None:
            steps = self.cfg["adapt_steps"]
        if steps is None:
            steps = self.learner.inner_steps
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(
                Errors.E019.format(setting="steps", requirement="an integer >= 0", value=steps)
            )
        support = self._collect_support(data)
        base = Prototypes.empty() if replace else self._prototypes
        if steps > 0:
            uncovered = [label for label in base.labels if label not in support]
            if uncovered:
                raise ValueError(Errors.E027.format(steps=steps, labels=uncovered))
        sums, counts, encoded = self._encode_support(support, keep_embeddings=steps > 0)
        width = next(iter(sums.values())).shape[0]
        if base.labels and base.width != width:
            raise ValueError(Errors.E020.format(stored=base.width, encoder=width))
        updated = base.add(sums, counts)
        if steps > 0:
            index = {label: i for i, label in enumerate(updated.labels)}
            ids = [index[label] for label, items in support.items() for _ in items]
            embeddings = torch.cat(encoded)
            fitted = self.learner.adapt_head(
                embeddings,
                torch.tensor(ids, device=embeddings.device),
                len(updated.labels),
                self._head(),
                steps,
                learn_rate=self.cfg["adapt_learn_rate"],
            )
            updated = updated.with_head(fitted.weight.cpu().numpy(), fitted.bias.cpu().numpy())
        result = {
            "added": {label: n for label, n in counts.items() if label not in base.labels},
            "updated": {label: n for label, n in counts.items() if label in base.labels},
            "removed": [label for label in self.labels if label not in updated.labels],
        }
        self._prototypes = updated
        return result

    def _encode_support(self, support: Dict[str, List[Union[str, Doc]]], keep_embeddings: bool):
        """Tokenize and encode the support set batch by batch, summing the
        prepared embeddings of each label, so memory stays bounded by the batch.

        RETURNS: per-label sums (float64) and counts, and the raw embeddings of
            each batch in order when keep_embeddings (for an inner loop).
        """
        metric = self._head().metric
        items = [
            (label, i, item) for label, texts in support.items() for i, item in enumerate(texts)
        ]
        sums: Dict[str, numpy.ndarray] = {}
        counts: Dict[str, int] = {}
        kept: List[torch.Tensor] = []
        size = self.cfg["batch_size"]
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            docs = self._make_docs([item for _, _, item in batch])
            for (label, position, _), doc in zip(batch, docs):
                if len(doc) == 0:
                    raise ValueError(Errors.E006.format(label=label, index=position))
            encoded = self._embed(docs)
            if keep_embeddings:
                kept.append(encoded)
            for (label, _, _), row in zip(batch, prepare(encoded, metric).double().cpu().numpy()):
                sums[label] = sums[label] + row if label in sums else row
                counts[label] = counts.get(label, 0) + 1
        return sums, counts, kept

    def _collect_support(self, data: SupportData) -> Dict[str, List[Union[str, Doc]]]:
        """Validate adapt()'s input and group it as label -> items."""
        support: Dict[str, List[Union[str, Doc]]] = {}
        if isinstance(data, Mapping):
            for label, texts in data.items():
                self._check_adapt_label(label)
                if isinstance(texts, (str, Doc)) or not isinstance(texts, Iterable):
                    raise ValueError(Errors.E003.format(label=label, type=type(texts).__name__))
                support[label] = list(texts)
                if not support[label]:
                    raise ValueError(Errors.E002.format(label=label))
        elif isinstance(data, (str, Doc)) or not isinstance(data, Iterable):
            raise ValueError(Errors.E008.format(type=type(data).__name__))
        else:
            for eg in data:
                if not isinstance(eg, Example):
                    raise ValueError(Errors.E008.format(type=type(eg).__name__))
                labels = positive_labels(eg)
                if not labels:
                    raise ValueError(Errors.E007.format(cats=eg.reference.cats))
                if self.cfg["exclusive_classes"] and len(labels) > 1:
                    raise ValueError(Errors.E011.format(n=len(labels), labels=labels))
                for label in labels:
                    self._check_adapt_label(label)
                    support.setdefault(label, []).append(eg.predicted)
        if not support:
            raise ValueError(Errors.E001)
        for label, items in support.items():
            for index, item in enumerate(items):
                if not isinstance(item, (str, Doc)):
                    raise ValueError(
                        Errors.E004.format(type=type(item).__name__, label=label, index=index)
                    )
                if isinstance(item, str) and not item.strip():
                    raise ValueError(Errors.E006.format(label=label, index=index))
        return support

    def _check_adapt_label(self, label: Any) -> None:
        _check_label(label)
        if label == self.cfg["unknown_label"]:
            raise ValueError(Errors.E010.format(label=label))

    def _make_docs(self, items: Sequence[Union[str, Doc]]) -> List[Doc]:
        """Tokenize texts, and run the upstream component this component's
        encoder listens to (if any), so the docs carry what the encoder reads."""
        make_doc = self.nlp.make_doc if self.nlp is not None else _whitespace_doc(self.vocab)
        docs = [item if isinstance(item, Doc) else make_doc(item) for item in items]
        for upstream in self._upstream_components():
            docs = list(upstream.pipe(docs, batch_size=self.cfg["batch_size"]))
        return docs

    def _upstream_components(self) -> List[Callable]:
        if self.nlp is None:
            return []
        upstream = []
        for name, component in self.nlp.pipeline:
            if name == self.name:
                break
            if self.name in getattr(component, "listener_map", {}):
                upstream.append(component)
        return upstream

    def _embed(self, docs: Sequence[Doc]) -> torch.Tensor:
        """Encode docs in batches of `batch_size`, each doc once.

        RETURNS (torch.Tensor): (n_docs, width) encoder outputs.
        """
        encoder = self.model.get_ref("encoder")
        size = self.cfg["batch_size"]
        batches = [
            xp2torch(encoder.predict(list(docs[start : start + size])))
            for start in range(0, len(docs), size)
        ]
        return torch.cat(batches) if batches else torch.zeros((0, 0))

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Score a batch of examples: spaCy's textcat scores (cats_score,
        cats_macro_f, ...) once the component has labels; before any adapt(),
        episode accuracy on the examples' own labels (cats_episode_acc).

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
            embed=self._embed,
            head=self._head(),
            learner=self.learner,
            **kwargs,
        )

    def _head(self) -> MetricHead:
        return metric_head(self.model.get_ref("head"))

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialize the model (loading the pretrained transformer, if any)
        and forget all labels.

        get_examples (Callable[[], Iterable[Example]]): Function that returns a
            representative sample of gold-standard Example objects.
        nlp (Language): The current nlp object the component is part of.
        """
        validate_get_examples(get_examples, "FewShotTextCategorizer.initialize")
        if nlp is not None:
            self.nlp = nlp
        docs = [eg.reference for eg in islice(get_examples(), 10)]
        try:
            self.model.initialize(X=docs)
        except OSError as e:  # what transformers raises for a model it cannot find
            raise ValueError(Errors.E029.format(name=self.name, error=str(e).rstrip("."))) from e
        self._prototypes = Prototypes.empty()

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize the component, with its labels and prototypes.

        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (bytes): The serialized object.
        """
        self._validate_serialization_attrs()
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            "prototypes": self._prototypes.to_bytes,
        }
        return to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from bytes; on any error it is left unchanged.

        bytes_data (bytes): The data to load from.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The loaded object.
        """
        self._validate_serialization_attrs()
        data: Dict[str, bytes] = {}
        deserialize = {
            key: (lambda b, key=key: data.__setitem__(key, b))
            for key in ("cfg", "vocab", "model", "prototypes")
        }
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
        prototypes (msgpack of labels, sums and counts).

        path (str / Path): Path to a directory, which will be created if it doesn't exist.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        """
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: p.write_bytes(self.model.to_bytes()),
            "prototypes": lambda p: p.write_bytes(self._prototypes.to_bytes()),
        }
        to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from a directory; a missing or damaged file gives
        an error naming it, and the component is left unchanged.

        path (str / Path): Path to a directory.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The modified object.
        """
        path = Path(path)
        data: Dict[str, bytes] = {}
        for key in ("cfg", "model", "prototypes"):
            if key in exclude:
                continue
            if not (path / key).is_file():
                raise ValueError(Errors.E012.format(name=self.name, file=key, path=path))
            data[key] = (path / key).read_bytes()
        if "vocab" not in exclude and (path / "vocab").exists():
            self.vocab.from_disk(path / "vocab", exclude=exclude)
        self._load(data, exclude, where=str(path))
        return self

    def _load(self, data: Dict[str, bytes], exclude: Iterable[str], where: str) -> None:
        """Check everything before changing anything, then load."""
        cfg, prototypes = self.cfg, self._prototypes
        try:
            if "cfg" in data:
                cfg = srsly.json_loads(data["cfg"])
                if not isinstance(cfg, dict) or set(cfg) != set(self.cfg):
                    raise ValueError(f"expected the settings {sorted(self.cfg)}")
        except ValueError as e:
            raise ValueError(Errors.E013.format(name=self.name, file="cfg", error=e)) from e
        try:
            if "prototypes" in data:
                prototypes = Prototypes.from_bytes(data["prototypes"])
        except ValueError as e:
            raise ValueError(Errors.E013.format(name=self.name, file="prototypes", error=e)) from e
        if "vocab" in data and "vocab" not in exclude:
            self.vocab.from_bytes(data["vocab"], exclude=exclude)
        if "model" in data:
            try:
                self.model.from_bytes(data["model"])
            except Exception as e:
                raise ValueError(Errors.E013.format(name=self.name, file="model", error=e)) from e
        self.cfg = cfg
        self._prototypes = prototypes


def _check_adaptation(steps: Any, learn_rate: Any) -> None:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ValueError(
            Errors.E019.format(setting="adapt_steps", requirement="an integer >= 0", value=steps)
        )
    if learn_rate is not None and (
        not isinstance(learn_rate, (int, float)) or not 0 < learn_rate < float("inf")
    ):
        raise ValueError(
            Errors.E019.format(
                setting="adapt_learn_rate", requirement="a number > 0", value=learn_rate
            )
        )


def _check_label(label: Any) -> None:
    if not isinstance(label, str) or not label or label != label.strip():
        raise ValueError(Errors.E005.format(label=label))


def _whitespace_doc(vocab: Vocab) -> Callable[[str], Doc]:
    return lambda text: Doc(vocab, words=text.split())
