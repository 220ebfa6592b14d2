"""The two commands of a fresh machine: set up when needed, then run the offline default or the tests.

    python3 tasks.py run  [flags of python -m repspace.jobs.full_sweep]
    python3 tasks.py test [flags of pytest]

The first call makes a virtual environment in .venv and installs repspace into it with what the
offline default and the tests need (``pip install -e ".[tf,test]"``, a few minutes); later calls
reuse it, and reinstall only when pyproject.toml changed. People who manage their own
environment can run ``pip install -e ".[tf,test]"`` there and the commands below it instead.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".repspace-installed"
COMMANDS = {"run": ["-m", "repspace.jobs.full_sweep"], "test": ["-m", "pytest"]}


def python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup() -> None:
    """Create .venv and install the project when it is missing or pyproject.toml changed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if python().exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print(f"setting up {VENV} (first use, or pyproject.toml changed; a few minutes) ...", flush=True)
    if not python().exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python()), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]  # errors only
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-e", ".[tf,test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted + "\n")
    print("set-up done", flush=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    if sys.version_info < (3, 11):
        print(f"repspace needs Python 3.11 or newer; this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    try:
        setup()
    except subprocess.CalledProcessError as err:
        print(f"set-up failed ({err}); see the pip output above", file=sys.stderr)
        return 1
    return subprocess.call([str(python()), *COMMANDS[argv[0]], *argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
