"""An optional faster CPU inference path: the component's transformer run by
ONNX Runtime instead of torch whenever docs are only encoded (predict, adapt's
encoding of the support, the scorer, evaluation); training and deep adaptation
keep running torch.

Two backends, chosen by the component's `inference_backend` setting:
"onnxruntime" (float32, with ONNX Runtime's transformer fusions) and
"onnxruntime-int8" (the same, then dynamic int8 quantization of the matrix
multiplications, weights per output channel, all but one: `float32_nodes`).
The ONNX model is exported from the transformer's torch weights the first
time docs are encoded and exported again whenever those weights change
(training, deep adaptation, loading), so it always computes what the torch
model does, up to float (fp32) or quantization (int8) error. Nothing ONNX is
saved: the pipeline saves the setting, and the first encoding after loading
exports (a few seconds).
"""

import contextlib
import inspect
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple

import torch
from thinc.api import Model

from ..errors import Errors
from ..models.encoder import find_transformer_shim, weights_fingerprint

if TYPE_CHECKING:
    import onnx

TORCH_BACKEND = "torch"
FP32_BACKEND = "onnxruntime"
INT8_BACKEND = "onnxruntime-int8"
INFERENCE_BACKENDS = (TORCH_BACKEND, FP32_BACKEND, INT8_BACKEND)
OPSET = 17
# ONNX Runtime's fusions (attention, layer norm, GELU) know these architectures
FUSABLE_MODEL_TYPES = ("bert",)
# what torch.onnx says of the TorchScript exporter, which needs no onnxscript
EXPORTER_WARNING = r".*(legacy|TorchScript|dynamo).*"


# ONNX Runtime is not fork-safe: a session made in a process forked from one
# that already ran ONNX Runtime can hang while it is made (seen with
# nlp.pipe(n_process=2)). Forked processes (spaCy's workers) run torch.
_in_forked_child = False


def _forked() -> None:
    global _in_forked_child
    _in_forked_child = True


os.register_at_fork(after_in_child=_forked)


def make_backend(name: str, encoder: Model) -> Optional["OnnxRuntimeBackend"]:
    """The backend of an inference_backend setting for this encoder: None for
    torch. Raises E041 when it needs onnxruntime or onnx and either cannot be
    imported, E042 when the encoder has no transformer of its own."""
    if name == TORCH_BACKEND:
        return None
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ImportError(Errors.E041.format(backend=name, error=e)) from e
    if find_transformer_shim(encoder) is None:
        raise ValueError(Errors.E042.format(backend=name))
    return OnnxRuntimeBackend(quantize=name == INT8_BACKEND)


def float32_nodes(model: "onnx.ModelProto") -> List[str]:
    """The matrix multiplications that int8 quantization leaves in float32 in
    an exported (and fused) ONNX model: the first transformer layer's
    feed-forward output projection: nearly the fidelity of keeping the whole
    first layer in float32, and faster (docs/speed.md)."""
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and "/layer.0/output/dense/" in node.name
    ]


def export_onnx(
    transformer: torch.nn.Module,
    quantize: bool,
    keep_float32: Callable[["onnx.ModelProto"], List[str]] = float32_nodes,
) -> bytes:
    """The transformer as an ONNX model: exported by torch.onnx, fused by ONNX
    Runtime's transformer optimizer where it knows the architecture, and
    (quantize) with its matrix multiplications dynamically quantized to int8,
    weights per output channel, but for the nodes `keep_float32` names.

    RETURNS (bytes): The serialized ONNX model; its inputs are those of
        `input_names`, its one output the last hidden state.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    names = input_names(transformer)
    dummy = {name: torch.ones((1, 8), dtype=torch.long) for name in names}
    if "token_type_ids" in dummy:
        dummy["token_type_ids"] = torch.zeros((1, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, "last_hidden_state")}
    was_training = transformer.training
    transformer.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transformer.onnx"
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=EXPORTER_WARNING)
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                torch.onnx.export(
                    transformer,
                    (),
                    str(path),
                    kwargs=dummy,
                    input_names=list(names),
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=False,
                )
        finally:
            transformer.train(was_training)
        config = transformer.config
        if config.model_type in FUSABLE_MODEL_TYPES:
            fused = optimizer.optimize_model(
                str(path),
                model_type=config.model_type,
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
            )
            path = Path(tmp) / "fused.onnx"
            fused.save_model_to_file(str(path))
        if quantize:
            quantized = Path(tmp) / "int8.onnx"
            with advice_filtered():
                quantize_dynamic(
                    path,
                    quantized,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    nodes_to_exclude=keep_float32(onnx.load(str(path))),
                    # the fused operators' outputs have no inferred type
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            path = quantized
        return path.read_bytes()


# what onnxruntime's quantizer logs on the root logger; the transformer
# optimizer's fusions are the pre-processing it advises
QUANTIZER_ADVICE = "Please consider to run pre-processing before quantization"


@contextlib.contextmanager
def advice_filtered() -> Iterator[None]:
    """Within this block the root logger drops the quantizer's advice (and
    only that)."""

    def not_advice(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(QUANTIZER_ADVICE)

    root = logging.getLogger()
    root.addFilter(not_advice)
    try:
        yield
    finally:
        root.removeFilter(not_advice)


def input_names(transformer: torch.nn.Module) -> Tuple[str, ...]:
    """The inputs spacy-transformers passes that the transformer takes."""
    accepted = inspect.signature(transformer.forward).parameters
    return tuple(
        name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted
    )


class OnnxRuntimeBackend:
    """Runs a transformer's inference through ONNX Runtime, exported from its
    current torch weights (and again when they change).

    quantize (bool): Quantize the matrix multiplications to int8.
    """

    def __init__(self, quantize: bool) -> None:
        self.quantize = quantize
        self._lock = threading.Lock()
        self._model_bytes: Optional[bytes] = None
        self._exported_from: Optional[Tuple] = None
        self._session: Optional[Any] = None
        self._session_threads: Optional[int] = None
        self._active = 0  # encodings running through ONNX Runtime now
        self._original: Optional[torch.nn.Module] = None

    @property
    def name(self) -> str:
        """RETURNS (str): The inference_backend setting this backend runs."""
        return INT8_BACKEND if self.quantize else FP32_BACKEND

    def invalidate(self) -> None:
        """Forget the exported model (the weights changed in a way torch does
        not count, e.g. thinc's optimizer writing into them)."""
        with self._lock:
            self._exported_from = None

    def session(self, transformer: torch.nn.Module) -> Any:
        """The ONNX Runtime session for the transformer's current weights, with
        as many threads as torch uses now."""
        import onnxruntime

        with self._lock:
            fingerprint = weights_fingerprint(transformer)
            if self._exported_from != fingerprint:
                self._model_bytes = export_onnx(transformer, self.quantize)
                self._exported_from = fingerprint
                self._session = None
            threads = torch.get_num_threads()
            if self._session is None or self._session_threads != threads:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    self._model_bytes, options, providers=["CPUExecutionProvider"]
                )
                self._session_threads = threads
            return self._session

    @contextlib.contextmanager
    def encoding(self, shim: Any) -> Iterator[None]:
        """Within this block the shim's predictions (no gradient, CPU) run
        through ONNX Runtime; anything that needs gradients still runs torch."""
        transformer = shim._hfmodel.transformer
        if next(transformer.parameters()).device.type != "cpu" or _in_forked_child:
            yield  # a CPU path, for this process: on a GPU or in a forked worker torch runs
            return
        session = self.session(transformer)
        with self._lock:
            # encodings that overlap share the first one's session (weights
            # changed meanwhile reach the next encoding that starts alone)
            if self._active == 0:
                self._original = shim._model
                shim._model = OnnxRuntimeTransformer(transformer, session)
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    shim._model = self._original
                    self._original = None


class OnnxRuntimeTransformer(torch.nn.Module):
    """Stands in for the Hugging Face model inside the spacy-transformers shim
    while docs are encoded: without gradients it runs the ONNX Runtime session,
    with them (training, deep adaptation in another thread) the torch model."""

    def __init__(self, transformer: torch.nn.Module, session: Any) -> None:
        super().__init__()
        self.transformer = transformer
        self.session = session
        self.feeds = tuple(node.name for node in session.get_inputs())

    def train(self, mode: bool = True) -> "OnnxRuntimeTransformer":
        """Set the mode without walking the torch model's modules (the shim
        sets it twice per batch); the torch model takes it when it runs."""
        self.training = mode
        return self

    def forward(self, **inputs: torch.Tensor) -> Any:
        if torch.is_grad_enabled():
            if self.transformer.training != self.training:
                self.transformer.train(self.training)
            return self.transformer(**inputs)
        from transformers.modeling_outputs import BaseModelOutput

        input_ids = inputs["input_ids"]
        if "token_type_ids" not in inputs:
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        feeds = {name: inputs[name].to(torch.long).numpy() for name in self.feeds}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))
