"""Turning texts or docs into one embedding each: tokenize, run the upstream
components the encoder listens to, and encode in length-sorted batches. One
object serves adapt(), predict(), the scorer, evaluation and the scripts."""

import contextlib
from typing import Callable, ContextManager, List, Optional, Sequence, Tuple, Union

import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import Model, xp2torch
from thinc.types import Floats2d

from ..models.encoder import find_transformer_shim
from .onnx_inference import OnnxRuntimeBackend

TextOrDoc = Union[str, Doc]


class DocEmbedder:
    """Embed texts or docs with a component's encoder.

    encoder (thinc.api.Model): Maps a list of docs to a (n_docs, width) array.
    vocab (Vocab): Vocabulary for whitespace tokenization when there is no pipeline.
    nlp (Optional[Language]): The pipeline whose tokenizer makes docs from
        texts, and whose upstream components feed a listening encoder.
    name (str): The name of the component that owns the encoder (listeners
        are found by it).
    batch_size (int): Docs encoded at once.
    backend (Optional[OnnxRuntimeBackend]): Runs the encoder's own transformer
        through ONNX Runtime while encoding, or None for torch.
    """

    def __init__(
        self,
        encoder: Model,
        vocab: Vocab,
        *,
        nlp: Optional[Language] = None,
        name: str = "",
        batch_size: int = 32,
        backend: Optional[OnnxRuntimeBackend] = None,
    ) -> None:
        self.encoder = encoder
        self.vocab = vocab
        self.nlp = nlp
        self.name = name
        self.batch_size = batch_size
        self.backend = backend

    def __call__(self, items: Sequence[TextOrDoc]) -> torch.Tensor:
        """Embed texts or docs.

        items (Sequence[Union[str, Doc]]): Texts are tokenized first; docs are
            used as they are.
        RETURNS (torch.Tensor): (n_items, width) embeddings, in the items' order.
        """
        return self.embed_docs(self.make_docs(items))

    def make_docs(self, items: Sequence[TextOrDoc]) -> List[Doc]:
        """Tokenize texts, and run the upstream components this encoder
        listens to (if any), so the docs carry what the encoder reads."""
        if self.nlp is not None:
            make_doc: Callable[[str], Doc] = self.nlp.make_doc
        else:
            make_doc = lambda text: Doc(self.vocab, words=text.split())  # noqa: E731
        docs = [item if isinstance(item, Doc) else make_doc(item) for item in items]
        for upstream in self.upstream_components():
            docs = list(upstream.pipe(docs, batch_size=self.batch_size))
        return docs

    def upstream_components(self) -> List[Callable]:
        """The components before this one whose output this encoder listens to."""
        if self.nlp is None:
            return []
        upstream = []
        for name, component in self.nlp.pipeline:
            if name == self.name:
                break
            if self.name in getattr(component, "listener_map", {}):
                upstream.append(component)
        return upstream

    def embed_docs(self, docs: Sequence[Doc], *, torch_only: bool = False) -> torch.Tensor:
        """Encode docs in batches of `batch_size` docs of similar length (a
        transformer pads a batch to its longest doc), each doc once.

        torch_only (bool): Run torch even where a backend is set (within
            frozen_lower_layers, whose stand-in layers no export may trace).
        RETURNS (torch.Tensor): (n_docs, width) encoder outputs, in the docs' order.
        """
        docs = list(docs)
        if not docs:
            return torch.zeros((0, 0))
        batches = length_batches(docs, self.batch_size)
        with contextlib.nullcontext() if torch_only else self.encoding():
            outputs = [
                xp2torch(self.encoder.predict([docs[i] for i in batch])) for batch in batches
            ]
        sorted_embeddings = torch.cat(outputs)
        embeddings = torch.empty_like(sorted_embeddings)
        order = [i for batch in batches for i in batch]
        embeddings[torch.as_tensor(order, device=embeddings.device)] = sorted_embeddings
        return embeddings

    def begin_update(self, docs: List[Doc]) -> Tuple[Floats2d, Callable[[Floats2d], None]]:
        """The encoder's forward pass for training, in length-sorted batches of
        `batch_size`: (n_docs, width) embeddings in the docs' order, and the
        backprop of their gradient. A listening encoder gets the docs whole:
        its upstream component ran on the whole batch.
        """
        if self.upstream_components():
            return self.encoder.begin_update(docs)
        batches = length_batches(docs, self.batch_size)
        passes = [self.encoder.begin_update([docs[i] for i in batch]) for batch in batches]
        xp = self.encoder.ops.xp
        order = xp.asarray([i for batch in batches for i in batch])
        embeddings = xp.concatenate([output for output, _ in passes])[xp.argsort(order)]

        def backprop(d_embeddings: Floats2d) -> None:
            for batch, (_, backprop_batch) in zip(batches, passes):
                backprop_batch(d_embeddings[xp.asarray(batch)])

        return embeddings, backprop

    def encoding(self) -> ContextManager[None]:
        """Where the encoder's predictions run: through the ONNX Runtime
        backend, if one is set, else torch."""
        if self.backend is None:
            return contextlib.nullcontext()
        shim = find_transformer_shim(self.encoder)
        assert shim is not None, "make_backend() checks the encoder has a transformer"
        return self.backend.encoding(shim)


def length_order(docs: Sequence[Doc]) -> List[int]:
    """Positions of the docs from shortest to longest (ties keep their order)."""
    return sorted(range(len(docs)), key=lambda i: len(docs[i]))


def length_batches(docs: Sequence[Doc], batch_size: int) -> List[List[int]]:
    """The docs' positions in batches of `batch_size` docs of similar length
    (a transformer pads a batch to its longest doc)."""
    order = length_order(docs)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
