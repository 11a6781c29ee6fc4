"""meta/execution-environment.yml as ansible-builder reads it from an installed collection.

An execution environment that installs airgap.hangar gets the collection's Python packages and
none of the test-only system packages; ansible-builder's own introspection says which.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ("galaxy.yml", "requirements.txt", "bindep.txt", "meta/execution-environment.yml")


def introspect(tmp_path: Path) -> dict:
    collection = tmp_path / "ansible_collections" / "airgap" / "hangar"
    for name in FILES:
        (collection / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, collection / name)
    builder = Path(sys.executable).with_name("ansible-builder")
    result = subprocess.run([str(builder), "introspect", "--sanitize", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_execution_environment_gets_the_modules_python_packages(tmp_path):
    found = introspect(tmp_path)

    packages = [line.split("#", maxsplit=1)[0].strip() for line in found["python"]]
    assert "requests>=2.32.2" in packages
    assert "cryptography" in packages
    assert all("from collection airgap.hangar" in line for line in found["python"])


def test_execution_environment_installs_no_test_only_system_package(tmp_path):
    found = introspect(tmp_path)

    # bindep leaves out packages of a profile the build does not ask for ("test").
    assert found["system"], "bindep.txt was not read"
    assert all("test]" in line for line in found["system"]), found["system"]
