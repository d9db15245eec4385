"""Checks on a saved model's bytes before they reach a loader that could run
code or write files: the Hugging Face tokenizer files and settings that
spacy-transformers keeps inside a transformer's weights. spacy-transformers
writes each tokenizer entry to a path made from its name and passes the saved
settings to `from_pretrained`, which with `trust_remote_code` and an
`auto_map` runs Python files it is given."""

import json
from typing import Any, Iterator, Optional

import srsly

# settings that let transformers import code named by the files
CODE_KEYS = ("trust_remote_code", "auto_map")


def find_code_in_model(model_bytes: bytes) -> Optional[str]:
    """A description of the first thing in a thinc model's bytes that could
    run code or write outside a temporary folder on load, or None.

    model_bytes (bytes): The model's serialized bytes (thinc msgpack).
    RETURNS (Optional[str]): The problem, naming the entry, or None.
    """
    try:
        msg = srsly.msgpack_loads(model_bytes)
    except Exception:
        return None  # not msgpack: the model's own loader refuses it
    if not isinstance(msg, dict):
        return None
    for shims in msg.get("shims", []) or []:
        for shim_bytes in shims or []:
            problem = _find_code_in_shim(shim_bytes)
            if problem:
                return problem
    return None


def _find_code_in_shim(shim_bytes: Any) -> Optional[str]:
    if not isinstance(shim_bytes, bytes):
        return None
    try:
        shim = srsly.msgpack_loads(shim_bytes)
    except Exception:
        return None
    if not isinstance(shim, dict):
        return None
    for key in ("config", "_init_tokenizer_config", "_init_transformer_config"):
        found = _code_key(shim.get(key))
        if found:
            return f"'{found}' in its {key}"
    tokenizer = shim.get("tokenizer")
    if not isinstance(tokenizer, dict):
        return None
    found = _code_key(tokenizer.get("kwargs"))
    if found:
        return f"'{found}' in the tokenizer's settings"
    for name, content in tokenizer.items():
        if name == "kwargs":
            continue
        if not _is_plain_file_name(name):
            return f"the tokenizer file name {name!r} (a path, not a file name)"
        if name.endswith((".py", ".pyc", ".so")):
            return f"the code file {name!r} among the tokenizer's files"
        if name.endswith(".json") and isinstance(content, bytes):
            try:
                found = _code_key(json.loads(content))
            except ValueError:
                found = None
            if found:
                return f"'{found}' in the tokenizer file {name!r}"
    return None


def _is_plain_file_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and name not in (".", "..")
        and not any(sep in name for sep in ("/", "\\", "\0"))
        and ":" not in name
    )


def _code_key(value: Any) -> Optional[str]:
    """A key of CODE_KEYS set anywhere inside nested dicts and lists."""
    for key, inner in _walk(value):
        if key in CODE_KEYS and inner not in (None, False, {}, []):
            return key
    return None


def _walk(value: Any) -> Iterator:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from _walk(inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _walk(inner)
