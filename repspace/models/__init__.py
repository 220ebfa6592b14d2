"""Model sources: the disentanglement_lib zoo, saved encoders (TensorFlow or ONNX), posterior files, and
ensembles trained here.

Importing this package does not import TensorFlow; :func:`load_encoder` and
:func:`train_ensemble` do, when called.
"""

from repspace.models.discovery import ModelEntry, find_models
from repspace.models.download import DownloadReport, download_models
from repspace.models.encoders import Encoder, load_encoder
from repspace.models.onnx_encoders import EncoderOptions
from repspace.models.posterior_files import (PosteriorFile, fingerprint_identity, is_posterior_file, open_posteriors,
                                             write_posterior_file)
from repspace.models.training import TrainConfig, train_ensemble, train_model
from repspace.models.zoo import ModelInfo, ModelInfoWarning, parse_model_numbers, read_model_info, zoo_model_info

__all__ = [
    "DownloadReport",
    "Encoder",
    "EncoderOptions",
    "ModelEntry",
    "find_models",
    "fingerprint_identity",
    "is_posterior_file",
    "open_posteriors",
    "PosteriorFile",
    "write_posterior_file",
    "ModelInfo",
    "ModelInfoWarning",
    "TrainConfig",
    "download_models",
    "load_encoder",
    "parse_model_numbers",
    "read_model_info",
    "train_ensemble",
    "train_model",
    "zoo_model_info",
]
