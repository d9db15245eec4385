"""Satisfy project.yml's assets from a local copy of the public data.

An asset whose dest is assets/<path> is taken from <shared_data>/<path> when that
file exists and its md5 matches the checksum in project.yml; anything else is
left for `spacy project assets` to download.
"""

import hashlib
import shutil
from pathlib import Path

import srsly
import typer

ASSETS = Path("assets")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def main(
    shared_data: Path = typer.Argument(..., help="The local copy, e.g. ../shared/data"),
) -> None:
    root = shared_data
    for asset in srsly.read_yaml("project.yml").get("assets", []):
        dest = Path(asset["dest"])
        source = root / dest.relative_to(ASSETS)
        if dest.exists() and md5(dest) == asset.get("checksum"):
            continue
        if not source.is_file():
            print(f"no local copy of {dest} (looked for {source})")
            continue
        if md5(source) != asset.get("checksum"):
            print(f"local copy {source} does not match the checksum of {dest}: skipped")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        print(f"copied {source} -> {dest}")


if __name__ == "__main__":
    typer.run(main)
