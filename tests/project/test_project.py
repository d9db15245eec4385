import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import srsly
from weasel.util import load_project_config

ROOT = Path(__file__).parent.parent.parent


def test_project_yml_is_valid_and_its_scripts_exist():
    config = load_project_config(ROOT)
    assert {"all", "learners"} <= set(config["workflows"])
    for command in config["commands"]:
        for line in command["script"]:
            words = line.split()
            for word in words:
                if word.startswith(("scripts/", "configs/")):
                    assert (ROOT / word).exists(), word
            if words[:2] == ["python", "-m"] and words[2].startswith("benchmarks."):
                assert (ROOT / f"{words[2].replace('.', '/')}.py").exists(), words[2]
        for dep in command.get("deps", []):
            if dep.startswith(("scripts/", "benchmarks/", "configs/")):
                assert (ROOT / dep).exists(), dep
    for asset in config["assets"]:
        assert len(asset["checksum"]) == 32
        if "url" in asset:
            assert asset["url"].startswith("https://")
        else:  # derived from a public source, which its description names
            assert "derived from" in asset["description"], asset["dest"]


def test_the_encoder_variable_reaches_every_step_of_all():
    """`spacy project run all . --vars.encoder X` meta-pretrains and evaluates X:
    every spacy train of `all` overrides the encoder's name, and every frozen
    ('default') pipeline of its steps is built on it."""
    config = load_project_config(ROOT, overrides={"vars.encoder": "my/encoder"})
    commands = {command["name"]: command for command in config["commands"]}
    lines = [line for step in config["workflows"]["all"] for line in commands[step]["script"]]
    trains = [line for line in lines if "spacy train" in line]
    frozen = [
        line
        for line in lines
        if " default " in line or "=default" in line or ".new_labels " in line
    ]
    assert trains and frozen
    for line in trains:
        assert "--components.few_shot_textcat.model.encoder.name my/encoder" in line, line
    for line in frozen:
        assert "--encoder my/encoder" in line, line


def test_local_assets_are_copied_only_when_the_checksum_matches(tmp_path):
    shared = tmp_path / "shared"
    project = tmp_path / "project"
    project.mkdir()
    good, bad = b"the right bytes\n", b"tampered\n"
    (shared / "a").mkdir(parents=True)
    (shared / "a" / "good.txt").write_bytes(good)
    (shared / "a" / "bad.txt").write_bytes(bad)
    assets = [
        {"dest": f"assets/a/{name}.txt", "url": f"https://example.org/{name}.txt",
         "checksum": hashlib.md5(good).hexdigest()}
        for name in ("good", "bad", "absent")
    ]  # fmt: skip
    srsly.write_yaml(project / "project.yml", {"title": "t", "assets": assets})
    shutil.copytree(ROOT / "scripts", project / "scripts")
    subprocess.run(
        [sys.executable, "scripts/copy_local_assets.py", str(shared)], cwd=project, check=True
    )
    assert (project / "assets" / "a" / "good.txt").read_bytes() == good
    assert not (project / "assets" / "a" / "bad.txt").exists()
    assert not (project / "assets" / "a" / "absent.txt").exists()
