"""disentanglement_lib's colour, noisy and scream variants of dSprites.

Each wraps a 64 x 64 x 1 base dataset (the real dSprites or the procedural renderer)
and transforms every image with randomness drawn from its index, so an index always
gives the same image; :func:`repspace.data.dsprites.load_dsprites_variant` builds them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, missing_file_error, resize_images

__all__ = ["ColorDSprites", "NoisyDSprites", "ScreamDSprites"]


class _DSpritesVariant(Dataset):
    """Base of the disentanglement_lib variants: a random transform of each base image.

    The transform's randomness for image ``i`` comes from
    ``numpy.random.default_rng((transform_seed, i))``, so each index always gives the
    same image, whichever batch it is read in.
    """

    channels = 3

    def __init__(self, base: Dataset, name: str, image_size: int | None, transform_seed: int) -> None:
        if base.image_shape != (64, 64, 1):
            raise ValueError(f"{name}: the base dataset must give 64 x 64 x 1 images, got {base.image_shape}")
        self.base = base
        self.name = name
        self.factor_names = base.factor_names
        self.factor_sizes = base.factor_sizes
        self.transform_seed = int(transform_seed)
        self._size = image_size if image_size and image_size != 64 else None
        size = self._size or 64
        self.image_shape = (size, size, self.channels)
        self.options = {"base": base.name, "transform_seed": self.transform_seed, **base.options}

    def __len__(self) -> int:
        return len(self.base)

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return self.base.factors(indices)

    def _images(self, indices: np.ndarray) -> np.ndarray:
        x = self.base.images(indices)
        out = np.empty((indices.size, 64, 64, self.channels), dtype=np.float32)
        for k, i in enumerate(indices):
            rng = np.random.default_rng((self.transform_seed, int(i)))
            out[k] = self._transform(x[k], rng)
        return resize_images(out, self._size) if self._size else out

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class ColorDSprites(_DSpritesVariant):
    """color_dsprites: the sprite in a random colour, each RGB channel uniform in [0.5, 1]."""

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image * rng.uniform(0.5, 1.0, size=3).astype(np.float32)


class NoisyDSprites(_DSpritesVariant):
    """noisy_dsprites: a white sprite over uniform [0, 1] RGB noise, min(image + noise, 1)."""

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.uniform(0.0, 1.0, size=(64, 64, 3)).astype(np.float32)
        return np.minimum(image + noise, 1.0)


class ScreamDSprites(_DSpritesVariant):
    """scream_dsprites: a random 64 x 64 crop of The Scream, its colours averaged with a
    random RGB colour, and inverted (1 - value) where the sprite is.

    The painting is fitted within 350 x 274 pixels (width x height, LANCZOS), as
    disentanglement_lib does; crops start anywhere the 64 x 64 window fits.
    """

    def __init__(
        self, base: Dataset, name: str, image_size: int | None, transform_seed: int, scream_path: Path
    ) -> None:
        super().__init__(base, name, image_size, transform_seed)
        scream_path = Path(scream_path)
        if not scream_path.is_file():
            raise missing_file_error(
                scream_path,
                "scream_dsprites needs an image of Munch's The Scream, which you supply",
                "Save a copy (for example from Wikimedia Commons) as <data_dir>/scream/scream.jpg, "
                "or pass scream_path=.",
            )
        from PIL import Image

        with Image.open(scream_path) as im:
            im = im.convert("RGB")
            im.thumbnail((350, 274), Image.Resampling.LANCZOS)
            self.scream = np.asarray(im, dtype=np.float32) / np.float32(255.0)
        if self.scream.shape[0] < 64 or self.scream.shape[1] < 64:
            raise ValueError(f"{scream_path}: the scream image is smaller than 64 x 64 after fitting")
        self.options["scream"] = scream_path.name

    def _transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w, _ = self.scream.shape
        top = int(rng.integers(0, h - 64 + 1))
        left = int(rng.integers(0, w - 64 + 1))
        patch = self.scream[top : top + 64, left : left + 64]
        patch = (patch + rng.uniform(0.0, 1.0, size=3).astype(np.float32)) / np.float32(2.0)
        mask = image[..., 0] >= 0.5
        patch[mask] = 1.0 - patch[mask]
        return patch
