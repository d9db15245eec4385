"""The docs stay true to the code (no model, no data): every relative link and
anchor resolves, every scripts/, benchmarks/ or configs/ path they name
exists, every `python -m` command they name is there, and every error code
the package has is in docs/reliability.md's table."""

import re
from pathlib import Path

import pytest

from spacy_metalearn.errors import Errors

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "metrics" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
# a path named as it is now (`git show REV:path` names one as it was)
PATH = re.compile(r"(?<![\w/.:-])((?:scripts|benchmarks|configs)/[\w./-]*\w)")
MODULE = re.compile(r"python -m ([\w.]+)(?:\s+([\w-]+))?")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def anchors(page: Path) -> set:
    """GitHub's anchors of a page's headings."""
    found = set()
    for line in page.read_text(encoding="utf8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def outside_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_and_anchors_resolve(page):
    for target in LINK.findall(outside_code(page.read_text(encoding="utf8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page_id(page)} links to {target}: no such file"
        if anchor:
            assert anchor in anchors(linked), f"{page_id(page)} links to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_named_paths_exist(page):
    for path in PATH.findall(page.read_text(encoding="utf8")):
        if "*" in path or path.endswith("/"):
            continue
        assert (ROOT / path).exists(), f"{page_id(page)} names {path}: no such file"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_named_commands_exist(page):
    from spacy_metalearn.__main__ import app

    commands = {command.name for command in app.registered_commands}
    for module, command in MODULE.findall(page.read_text(encoding="utf8")):
        if module.split(".")[-1].isupper() or not command or command.isupper():
            continue  # a placeholder: benchmarks.NAME, spacy_metalearn COMMAND
        if module == "spacy_metalearn":
            assert command in commands, f"{page_id(page)} names `{module} {command}`"
        elif module.startswith("benchmarks."):
            file = ROOT / (module.replace(".", "/") + ".py")
            assert file.exists(), f"{page_id(page)} names `python -m {module}`: no such module"


def test_every_error_code_is_in_the_reliability_table():
    table = (ROOT / "docs" / "reliability.md").read_text(encoding="utf8")
    listed = set(re.findall(r"\bE\d{3}\b", table))
    codes = {name for name in vars(Errors) if re.fullmatch(r"E\d{3}", name)}
    assert not sorted(codes - listed), "codes missing from docs/reliability.md"


def test_quoted_figures_are_the_metrics_files():
    """The tables the README and docs quote are what scripts/doc_tables.py
    makes from metrics/ (make run rewrites both)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "doc_tables.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
