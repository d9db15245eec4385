"""Where the command line writes: which existing outputs it may replace, and
how it replaces them so that nothing is ever half-written.

A pipeline folder is swapped into place with one atomic exchange of two paths
(renameat2's RENAME_EXCHANGE on Linux, renamex_np's RENAME_SWAP on macOS), so
that OUTPUT is a whole pipeline, old or new, at every instant. Where the
filesystem has no such exchange, the old folder is moved aside first and the
next save puts it back if the process died in between."""

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional

from thinc.api import Config

from .errors import Errors

# what nlp.to_disk() writes beside one folder per component
PIPELINE_FILES = ("config.cfg", "meta.json", "tokenizer", "vocab")
FACTORY = "few_shot_textcat"


def check_output_folder(output: Path, *, force: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output folder that cannot be written without loss: an
    existing one without `force` (E025), a file (E035), the current
    directory, one of the inputs or a folder above them (E044), and, even
    with `force`, anything but an empty folder or a pipeline folder holding
    nothing but what nlp.to_disk() writes (E045)."""
    check_not_input(output, inputs)
    if not output.exists():
        return
    if not output.is_dir():
        raise ValueError(Errors.E035.format(path=output))
    if not force:
        raise ValueError(Errors.E025.format(path=output))
    foreign = foreign_entries(output)
    if foreign:
        listed = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ValueError(Errors.E045.format(path=output, entries=listed))


def check_not_input(output: Path, inputs: Iterable[Path]) -> None:
    """Refuse an output that is the current directory, one of the inputs, or
    a folder above one of them (E044): writing there would replace it."""
    target = output.absolute().resolve()
    protected = [(Path.cwd().resolve(), "the current directory")]
    protected += [(Path(p).absolute().resolve(), f"the input '{p}'") for p in inputs]
    for path, what in protected:
        if target == path or target in path.parents:
            raise ValueError(Errors.E044.format(path=output, what=what))


def foreign_entries(folder: Path) -> List[str]:
    """The entries of `folder` that a save of a few_shot_textcat pipeline
    would not have written: [] for an empty folder or such a pipeline, every
    entry for a folder that is no such pipeline."""
    entries = [entry.name for entry in folder.iterdir()]
    if not entries:
        return []
    components = _pipeline_components(folder)
    if components is None:
        return entries
    return [name for name in entries if name not in PIPELINE_FILES and name not in components]


def _pipeline_components(folder: Path) -> Optional[List[str]]:
    """The component folders of a saved pipeline with a few_shot_textcat
    component, or None if `folder` holds no such pipeline."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf8"))
        components = Config().from_disk(folder / "config.cfg", interpolate=False)["components"]
    except Exception:  # unreadable, not JSON, not a config, no [components]
        return None
    if not isinstance(meta, dict):
        return None
    names = [
        name
        for key in ("components", "pipeline", "disabled")
        for name in meta.get(key) or []
        if isinstance(name, str)
    ]
    has_component = any(
        isinstance(components.get(name), dict)
        and components[name].get("factory") == FACTORY
        and (folder / name).is_dir()
        for name in names
    )
    return names if has_component else None


def check_output_file(output: Path, *, force: bool) -> None:
    """Refuse to overwrite an existing file without `force` (E025), and a
    folder where a file belongs (E046)."""
    if output.is_dir():
        raise ValueError(Errors.E046.format(path=output))
    if output.exists() and not force:
        raise ValueError(Errors.E025.format(path=output))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder:
    a failed write (a full disk) leaves the previous file whole."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def save_pipeline(nlp, output: Path) -> None:
    """Write the pipeline to a staging folder beside `output`, then swap it
    into place; the old pipeline (now in the staging folder) is removed
    last. Staging folders that a killed save left behind are removed first.
    The folder gets the usual permissions (not mkdtemp's 0700), so others can
    load it."""
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    previous = output.with_name(f".{output.name}.previous")
    if previous.exists():  # a save without exchange died between its two moves
        if output.exists():
            shutil.rmtree(previous)
        else:
            os.replace(previous, output)
    for stale in output.parent.glob(f".{output.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    try:
        nlp.to_disk(staging)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        if not output.exists():
            os.replace(staging, output)
        elif not exchange(staging, output):
            os.replace(output, previous)
            os.replace(staging, output)
            shutil.rmtree(previous)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the system or filesystem
    cannot (nothing is changed then)."""
    swap = _EXCHANGE.get(sys.platform)
    if swap is None:
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    function = getattr(libc, swap[0], None)
    if function is None:
        return False
    if function(*swap[1](os.fsencode(first), os.fsencode(second))) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


AT_FDCWD = -100
RENAME_EXCHANGE = 2  # linux/fs.h
RENAME_SWAP = 2  # macOS sys/stdio.h
_EXCHANGE = {
    "linux": ("renameat2", lambda a, b: (AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)),
    "darwin": ("renamex_np", lambda a, b: (a, b, RENAME_SWAP)),
}
