"""What a sentence-transformers model folder says about reading its model:
pooling (`1_Pooling/config.json`), normalization (a Normalize module in
`modules.json`), prompts (`config_sentence_transformers.json`), length and
casing (`sentence_bert_config.json`); and whether it holds weights."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import Errors
from .pooling import POOLING_MODES

# sentence-transformers' module types this encoder runs, by their last name
# ("sentence_transformers.models.Pooling", or the package's newer paths)
RUNNABLE_MODULES = ("Transformer", "Pooling", "Normalize")
# the boolean keys of older Pooling configs, in the order their modes concatenate
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class ModelFolderConfig:
    """How a model's authors read it. The defaults are a plain transformers
    model's: mean pooling, no normalization, no prompt."""

    pooling: Tuple[str, ...] = ("mean",)
    include_prompt: bool = True
    normalize: bool = False
    prompts: Dict[str, str] = field(default_factory=dict)
    default_prompt_name: Optional[str] = None
    max_seq_length: Optional[int] = None
    do_lower_case: bool = False


def find_model_folder(name: str) -> Optional[Path]:
    """The folder of the model `name`: a local path, or a Hugging Face name
    already in the local cache (nothing is downloaded); None otherwise."""
    path = Path(name)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repository name
        return None


def read_model_folder(folder: Path) -> ModelFolderConfig:
    """What the folder's sentence-transformers files say; a folder without
    them (a plain transformers model) gets ModelFolderConfig's defaults."""
    config = ModelFolderConfig()
    modules = _read_json(folder / "modules.json", default=[])
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in RUNNABLE_MODULES:
            raise ValueError(
                Errors.E071.format(
                    folder=folder, module=module.get("type"), runnable=", ".join(RUNNABLE_MODULES)
                )
            )
        if kind == "Pooling":
            pooling = _read_json(folder / module.get("path", "") / "config.json", default={})
            config.pooling = pooling_modes(pooling, folder)
            config.include_prompt = bool(pooling.get("include_prompt", True))
        elif kind == "Normalize":
            config.normalize = True
    settings = _read_json(folder / "config_sentence_transformers.json", default={})
    config.prompts = {
        str(key): str(value) for key, value in (settings.get("prompts") or {}).items()
    }
    config.default_prompt_name = settings.get("default_prompt_name") or None
    transformer = _read_json(folder / "sentence_bert_config.json", default={})
    config.max_seq_length = transformer.get("max_seq_length")
    config.do_lower_case = bool(transformer.get("do_lower_case", False))
    return config


def pooling_modes(pooling: Dict[str, Any], source: Any) -> Tuple[str, ...]:
    """The modes of a Pooling config: `pooling_mode` (a mode or a list), or
    the older `pooling_mode_*` booleans (none set: mean)."""
    if "pooling_mode" in pooling:
        value = pooling["pooling_mode"]
        modes = (value,) if isinstance(value, str) else tuple(value)
    else:
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if pooling.get(key))
        modes = modes or ("mean",)
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown or not modes:
        raise ValueError(
            Errors.E072.format(source=source, modes=list(modes), known=", ".join(POOLING_MODES))
        )
    return modes


def check_weights(folder: Path, use_safetensors: bool) -> None:
    """Raise when the folder holds no torch weights, or only pickled ones
    where safetensors were asked for."""
    names = {path.name for path in folder.iterdir()}
    has_safetensors = any(name in names for name in SAFETENSORS_FILES)
    has_pickle = any(name in names for name in PICKLE_FILES)
    if not has_safetensors and not has_pickle:
        raise ValueError(
            Errors.E073.format(folder=folder, files=", ".join(SAFETENSORS_FILES + PICKLE_FILES))
        )
    if use_safetensors and not has_safetensors:
        raise ValueError(Errors.E074.format(folder=folder))


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        with path.open(encoding="utf8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(Errors.E075.format(path=path, error=error)) from None
