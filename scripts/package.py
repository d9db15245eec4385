"""Package a pipeline with `spacy package`, install the package with pip into a
scratch folder, then load it by its package name in a fresh Python process and
adapt it to two labels: the check that a meta-pretrained pipeline ships.

    python scripts/package.py training/model-best packages \
        --name few_shot_textcat_meta --version 0.1.0
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import spacy
import typer

CHECK = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
textcat = nlp.get_pipe("few_shot_textcat")
textcat.adapt({"card": ["my card was stolen", "I lost my credit card"],
               "transfer": ["send money to my friend", "how do I transfer funds"]}, replace=True)
doc = nlp("someone took my card")
print(json.dumps({"pipeline": nlp.pipe_names, "labels": list(textcat.labels), "cats": doc.cats}))
"""


def main(
    pipeline: Path = typer.Argument(..., help="The pipeline folder to package"),
    output: Path = typer.Argument(..., help="Folder for the package source"),
    name: str = typer.Option(..., help="Package name (spaCy prefixes the language)"),
    version: str = typer.Option("0.1.0"),
) -> None:
    lang = spacy.util.load_meta(pipeline / "meta.json")["lang"]
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(pipeline), str(output), "--name", name,
         "--version", version, "--build", "none", "--force"],
        check=True,
    )  # fmt: skip
    package = f"{lang}_{name}"
    source = output / f"{package}-{version}"
    with tempfile.TemporaryDirectory() as site:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--no-build-isolation", "--target", site, str(source)],
            check=True,
        )  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-c", CHECK, package],
            # the scratch folder first, then whatever the environment already adds
            env={
                "PYTHONPATH": os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")])),
                "PATH": "",
                "HF_HUB_OFFLINE": "1",
            },
            check=True,
            capture_output=True,
            text=True,
        )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    best = max(report["cats"], key=report["cats"].get)
    print(f"Installed {package} {version} with pip, loaded it by name: {report['pipeline']}")
    print(f"Adapted it to {report['labels']}: 'someone took my card' -> {best} {report['cats']}")
    if best != "card":
        raise SystemExit("The installed package did not adapt as expected")


if __name__ == "__main__":
    typer.run(main)
