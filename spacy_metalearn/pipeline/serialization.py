"""Saving and loading a few_shot_textcat (the `component` of every function
here): the files it writes, and loading that changes nothing unless
everything checks out.

Loading checks every file before the component changes (settings, support
set, deep-adaptation start, code in the model file); it then loads the model
and vocab, putting both back as they were if either fails, and returns the
state for the component to take (SavedPipe._apply)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import numpy
import srsly
from spacy.pipeline import TrainablePipe
from spacy.util import SimpleFrozenList, from_bytes, to_bytes, to_disk
from thinc.api import Config

from ..adaptation.deep import check_start, start_from_bytes, start_to_bytes
from ..adaptation.snapshot import Adaptation, build_adaptation
from ..adaptation.support_set import SupportSet
from ..encoding.onnx_inference import make_backend
from ..errors import Errors
from ..outputs import write_atomically
from .payload import find_code_in_model
from .saved_weights import check_model_values, load_model_strictly, model_bytes_or_none
from .settings import (
    DEFAULTS,
    SETTINGS_SINCE,
    check_meta_train_layers,
    check_settings,
    normalized_settings,
)

FIELDS = ("cfg", "vocab", "model", "support", "deep_start")
# files a saved component must have (deep_start only after deep adaptation)
REQUIRED_FILES = ("cfg", "model", "support")


@dataclass
class LoadedState:
    """What a checked load gives the component: its settings, adaptation, the
    start deep adaptation keeps, and the inference backend where it changed."""

    cfg: Dict[str, Any]
    adaptation: Adaptation
    deep_start: Optional[Dict[str, numpy.ndarray]]
    backend: Any = None


def component_to_bytes(component: TrainablePipe, exclude: Iterable[str]) -> bytes:
    serialize = {
        "cfg": lambda: srsly.json_dumps(component.cfg),
        "vocab": lambda: component.vocab.to_bytes(exclude=exclude),
        "model": component.model.to_bytes,
        "support": component.adaptation.support_set.to_bytes,
    }
    deep_start = component.deep_start
    if deep_start is not None:
        serialize["deep_start"] = lambda: start_to_bytes(deep_start)
    return to_bytes(serialize, exclude)


def read_bytes(name: str, bytes_data: bytes, exclude: Iterable[str]) -> Dict[str, bytes]:
    """The fields of a component's bytes (E013 where they cannot be read)."""
    data: Dict[str, bytes] = {}
    deserialize = {key: (lambda b, key=key: data.__setitem__(key, b)) for key in FIELDS}
    try:
        from_bytes(bytes_data, deserialize, exclude)
    except Exception as e:
        raise ValueError(Errors.E013.format(name=name, file="bytes", error=e)) from e
    return data


def component_to_disk(component: TrainablePipe, path: Path, exclude: Iterable[str]) -> None:
    support_set = component.adaptation.support_set
    deep_start = component.deep_start

    def write_deep_start(file: Path) -> None:
        if deep_start is not None:
            write_atomically(file, start_to_bytes(deep_start))
        elif file.exists():  # left by an earlier save to the same folder
            file.unlink()

    serialize = {
        "cfg": lambda p: write_atomically(p, srsly.json_dumps(component.cfg, indent=2).encode()),
        "vocab": lambda p: component.vocab.to_disk(p, exclude=exclude),
        "model": lambda p: write_atomically(p, component.model.to_bytes()),
        "support": lambda p: write_atomically(p, support_set.to_bytes()),
        "deep_start": write_deep_start,
    }
    to_disk(path, serialize, exclude)


def read_disk(
    component: TrainablePipe, path: Path, exclude: Iterable[str]
) -> Tuple[Dict[str, bytes], Optional[Callable[[], Any]]]:
    """The component's files in `path` (E012 for one that is missing), and
    how to load its vocab."""
    data: Dict[str, bytes] = {}
    for key in REQUIRED_FILES:
        if key in exclude:
            continue
        if not (path / key).is_file():
            raise ValueError(Errors.E012.format(name=component.name, file=key, path=path))
        data[key] = (path / key).read_bytes()
    if "deep_start" not in exclude and (path / "deep_start").is_file():
        data["deep_start"] = (path / "deep_start").read_bytes()
    vocab_path = path / "vocab"
    load_vocab = None
    if "vocab" not in exclude and vocab_path.exists():
        load_vocab = lambda: component.vocab.from_disk(vocab_path, exclude=exclude)  # noqa: E731
    return data, load_vocab


def load_time_overrides(
    name: str, cfg: Dict[str, Any], configured: Dict[str, Any], config_path: Path
) -> Dict[str, Any]:
    """The settings given to spacy.load(..., config=...): those the
    component was built with (`configured`) that differ from the saved
    pipeline's config, and, for a setting its config lacks (saved before the
    setting existed, SETTINGS_SINCE), a value other than the factory's
    default, which spaCy fills in otherwise. They win over the saved cfg; the
    others come from it (it also holds what set_adaptation() changed after
    the config was written)."""
    if not config_path.is_file():
        return {}
    try:
        saved = Config().from_disk(config_path, interpolate=False)
        saved_settings = saved["components"][name]
    except Exception:
        return {}
    return {
        key: cfg[key]
        for key, value in configured.items()
        if (key in saved_settings and saved_settings[key] != value)
        or (key in SETTINGS_SINCE and key not in saved_settings and value != DEFAULTS[key])
    }


def load(
    component: TrainablePipe,
    data: Dict[str, bytes],
    exclude: Iterable[str],
    load_vocab: Optional[Callable[[], Any]] = None,
    overrides: Optional[Dict[str, Any]] = None,
) -> LoadedState:
    """Check everything that can be checked before changing anything; load
    the model and vocab, putting them back as they were if either fails;
    return the settings and support set for the component to take."""
    name, model = component.name, component.model
    cfg, support_set = component.cfg, component.adaptation.support_set
    if "cfg" in data:
        try:
            # the standard library's parser: srsly's reads 0.7 as 0.7000000000000001
            cfg = json.loads(data["cfg"])
            if isinstance(cfg, dict):
                cfg = {**{k: v for k, v in SETTINGS_SINCE.items() if k not in cfg}, **cfg}
            if not isinstance(cfg, dict) or set(cfg) != set(component.cfg):
                raise ValueError(f"expected the settings {sorted(component.cfg)}")
            check_settings(cfg)
            cfg = {**cfg, **(overrides or {})}
        except ValueError as e:
            raise ValueError(Errors.E013.format(name=name, file="cfg", error=e)) from e
    if "support" in data:
        try:
            # the cosine metric keeps unit-length rows (models.metric.prepare)
            metric = model.get_ref("head").attrs.get("metric")
            support_set = SupportSet.from_bytes(data["support"], unit_length=metric == "cosine")
        except ValueError as e:
            raise ValueError(Errors.E013.format(name=name, file="support", error=e)) from e
    deep_start = None
    if "deep_start" in data:
        try:
            deep_start = start_from_bytes(data["deep_start"])
        except ValueError as e:
            raise ValueError(Errors.E013.format(name=name, file="deep_start", error=e)) from e
    # E041 / E042 / E043 before anything changes
    backend = make_backend(cfg["inference_backend"], model.get_ref("encoder"))
    check_meta_train_layers(cfg["meta_train_layers"], model.get_ref("encoder"))
    if cfg["unknown_label"] in support_set.labels:
        error = ValueError(Errors.E010.format(label=cfg["unknown_label"]))
        raise ValueError(Errors.E013.format(name=name, file="cfg", error=error))
    if "model" in data:
        problem = find_code_in_model(data["model"])
        if problem:
            raise ValueError(Errors.E033.format(name=name, problem=problem, file="model"))
    if "vocab" in data and "vocab" not in exclude:
        load_vocab = lambda: component.vocab.from_bytes(data["vocab"], exclude=exclude)  # noqa: E731
    model_backup = model_bytes_or_none(model)
    vocab_backup = component.vocab.to_bytes() if load_vocab is not None else None
    try:
        if "model" in data:
            try:
                load_model_strictly(model, data["model"])
                check_model_values(model)
            except Exception as e:
                raise ValueError(Errors.E013.format(name=name, file="model", error=e)) from e
        if deep_start is not None:
            try:
                check_start(model.get_ref("encoder"), deep_start)
            except ValueError as e:
                raise ValueError(Errors.E013.format(name=name, file="deep_start", error=e)) from e
        if load_vocab is not None:
            load_vocab()
        adaptation = build_adaptation(
            support_set, component.learner, component.head, component.device
        )
    except Exception:
        if model_backup is not None:
            model.from_bytes(model_backup)
        if vocab_backup is not None:
            component.vocab.from_bytes(vocab_backup)
        raise
    changed = cfg["inference_backend"] != component.cfg["inference_backend"]
    return LoadedState(
        cfg=normalized_settings(cfg),
        adaptation=adaptation,
        deep_start=deep_start,
        backend=backend if changed else None,
    )


class SavedPipe(TrainablePipe):
    """A TrainablePipe that saves its settings, support set and
    deep-adaptation start beside its model and vocab, and loads all of them
    or nothing: the few_shot_textcat component's serialization, as spaCy's
    TextCategorizer inherits TrainablePipe's. The subclass takes a checked
    load in `_apply`."""

    _configured: Dict[str, Any]

    def _apply(self, loaded: LoadedState) -> None:
        raise NotImplementedError

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize the component, with its labels and support set.

        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (bytes): The serialized object.
        """
        self._validate_serialization_attrs()
        return component_to_bytes(self, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from bytes; on any error it is left unchanged.

        bytes_data (bytes): The data to load from.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The loaded object.
        """
        self._validate_serialization_attrs()
        data = read_bytes(self.name, bytes_data, exclude)
        self._apply(load(self, data, exclude))
        return self

    def to_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> None:
        """Save the component to a directory (cfg, model, support and, after
        deep adaptation, deep_start), each file written whole or not at all.

        path (str / Path): Path to a directory, which will be created if it doesn't exist.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        """
        component_to_disk(self, Path(path), exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load the component from a directory; a missing or damaged file gives
        an error naming it, and the component is left unchanged. Settings
        given to spacy.load(..., config=...) win over the saved ones.

        path (str / Path): Path to a directory.
        exclude (Iterable[str]): String names of serialization fields to exclude.
        RETURNS (FewShotTextCategorizer): The modified object.
        """
        path = Path(path)
        data, load_vocab = read_disk(self, path, exclude)
        overrides = load_time_overrides(
            self.name, self.cfg, self._configured, path.parent / "config.cfg"
        )
        self._apply(load(self, data, exclude, load_vocab=load_vocab, overrides=overrides))
        return self
