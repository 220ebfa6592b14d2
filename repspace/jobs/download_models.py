"""Fetch disentanglement_lib zoo models.

    python -m repspace.jobs.download_models 0-49,7750 [--dest data/models] [--base-url URL]

Resumable: rerun the same command after an interruption; finished models are not fetched
again. Exit status 1 when any model failed (each is listed by number).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from repspace.models.download import DEFAULT_BASE_URL, download_models
from repspace.models.zoo import parse_model_numbers


@dataclasses.dataclass(frozen=True)
class DownloadConfig:
    numbers: list[int]
    dest: Path = Path("data/models")
    base_url: str = DEFAULT_BASE_URL
    workers: int = 4
    retries: int = 2
    progress: bool = True
    keep_zip: bool = False
    check_models: bool = True


def parse_args(argv: list[str] | None = None) -> DownloadConfig:
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.download_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("numbers", nargs="+", help="model numbers or ranges, e.g. 0-49 7750 or 0-4,10")
    p.add_argument("--dest", type=Path, default=DownloadConfig.dest, help="directory of models (default %(default)s)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="where <n>.zip lives (default %(default)s)")
    p.add_argument("--workers", type=int, default=DownloadConfig.workers, help="downloads at once (default %(default)s)")
    p.add_argument("--retries", type=int, default=DownloadConfig.retries, help="resumes per model after a cut (default %(default)s)")
    p.add_argument("--keep-zip", action="store_true", help="keep <n>.zip after extracting")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-check", action="store_true", help="do not open each model (its gaussian_encoder signature) "
                   "before it counts as downloaded")
    a = p.parse_args(argv)
    for name, least in (("workers", 1), ("retries", 0)):
        if getattr(a, name) < least:
            p.error(f"--{name} must be at least {least}, got {getattr(a, name)}")
    return DownloadConfig(
        numbers=parse_model_numbers(a.numbers), dest=a.dest, base_url=a.base_url, workers=a.workers,
        retries=a.retries, progress=not a.quiet, keep_zip=a.keep_zip, check_models=not a.no_check,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    report = download_models(
        cfg.numbers, cfg.dest, base_url=cfg.base_url, workers=cfg.workers, progress=cfg.progress,
        retries=cfg.retries, keep_zip=cfg.keep_zip, check_models=cfg.check_models,
    )
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
