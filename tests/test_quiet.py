"""TensorFlow's start-up lines stay out of repspace's output unless asked for (--verbose)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tf

TF_LINES = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000 ", "W0000 ", "E0000 ")
SCRIPT = """
import numpy as np
from repspace.models import load_encoder
enc = load_encoder({path!r})
mu, logvar = enc(np.zeros((3,) + tuple(enc.input_shape), np.float32))
print("encoded", mu.shape)
"""


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from .test_models_encoders import linear_weights, write_tf2_saved_model

    path = tmp_path_factory.mktemp("quiet") / "m"
    write_tf2_saved_model(path, linear_weights(0))
    return path


def encode_in_a_fresh_process(path, verbose: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "REPSPACE_VERBOSE"))}
    if verbose:
        env["REPSPACE_VERBOSE"] = "1"
    return subprocess.run([sys.executable, "-c", SCRIPT.format(path=str(path))], capture_output=True, text=True,
                          env=env, timeout=300)


def test_loading_and_encoding_print_no_tensorflow_lines(model_path):
    quiet = encode_in_a_fresh_process(model_path, verbose=False)
    assert quiet.returncode == 0, quiet.stderr
    assert "encoded (3," in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if any(t in line for t in TF_LINES)], quiet.stderr
    loud = encode_in_a_fresh_process(model_path, verbose=True)  # the check can fail: verbose shows them
    assert loud.returncode == 0 and any(t in loud.stderr for t in TF_LINES), loud.stderr
