"""The view recipe's parameters: SimCLR's augmentation strengths and probabilities.

References:
    [0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Appendix A (the view recipe).
    [1] BYOL, Grill et al. 2020, arXiv:2006.07733, Table 6 (solarization).
    [2] SwAV, Caron et al. 2020, arXiv:2006.09882, Sec. 3.2 (multi-crop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from selfsup.checks import check_float, check_int


@dataclass
class ViewConfig:
    """Parameters of the SimCLR view recipe [0] (plus BYOL's solarization [1]).

    Attributes:
        size: output side in pixels; None keeps the input size.
        crop_scale: range of the crop's area as a fraction of the image area.
        crop_ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        flip_p: probability of a horizontal flip.
        jitter_strength: colour-jitter strength s; brightness, contrast and saturation factors
            are uniform in [max(0, 1 - 0.8 s), 1 + 0.8 s] and the hue shift in [-0.2 s, 0.2 s].
        jitter_p: probability of applying colour jitter to a sample.
        grayscale_p: probability of converting a sample to grayscale.
        blur_p: probability of Gaussian blur (SimCLR uses 0.5 at ImageNet resolution; it is off
            by default because it destroys most of a <= 32 px image).
        blur_kernel_fraction: blur kernel size as a fraction of the output size (odd, >= 3).
        blur_sigma: range of the blur's standard deviation, in pixels.
        solarize_p: probability of solarization.
        solarize_threshold: pixels at or above this value (in [0, 1]) are inverted.
        second_blur_p, second_solarize_p: BYOL's asymmetric pair [1]: the blur and solarize
            probabilities of the second view (the first uses `blur_p`, `solarize_p`); None keeps
            the two views' recipes identical.
        local_crops: multi-crop [2]: small crops made besides the two (global) views, for the
            methods that take them (swav, dino); 0 is the plain pair.
        local_size: the small crops' side in pixels (SwAV, DINO: 96 beside 224 px views).
        local_crop_scale: the small crops' area range (SwAV: 0.05-0.14; DINO: 0.05-0.4).
    """

    size: int | None = None
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_strength: float = 1.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_kernel_fraction: float = 0.1
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5
    second_blur_p: float | None = None
    second_solarize_p: float | None = None
    local_crops: int = 0
    local_size: int = 12
    local_crop_scale: tuple[float, float] = (0.05, 0.14)

    def __post_init__(self) -> None:
        # Recipes loaded from YAML give lists; keep the declared tuple types.
        self.crop_scale = _float_pair("crop_scale", self.crop_scale)
        self.crop_ratio = _float_pair("crop_ratio", self.crop_ratio)
        self.blur_sigma = _float_pair("blur_sigma", self.blur_sigma)
        self.local_crop_scale = _float_pair("local_crop_scale", self.local_crop_scale)
        check_int("size", self.size, 4, 4096, optional=True)
        check_int("local_crops", self.local_crops, 0, 64)
        check_int("local_size", self.local_size, 4, 4096)
        for name in ("crop_scale", "local_crop_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise ValueError(
                    f"{name} must satisfy 0 < low <= high <= 1, got {getattr(self, name)}"
                )
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi <= 100:
            raise ValueError(
                f"crop_ratio must satisfy 0 < low <= high <= 100, got {self.crop_ratio}"
            )
        for name in (
            "flip_p",
            "jitter_p",
            "grayscale_p",
            "blur_p",
            "solarize_p",
            "second_blur_p",
            "second_solarize_p",
        ):
            check_float(name, getattr(self, name), 0, 1, optional=name.startswith("second_"))
        check_float("jitter_strength", self.jitter_strength, 0, 10)
        check_float("blur_kernel_fraction", self.blur_kernel_fraction, 0, 1, low_open=True)
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi <= 1e3:
            raise ValueError(
                f"blur_sigma must satisfy 0 < low <= high <= 1000, got {self.blur_sigma}"
            )
        check_float("solarize_threshold", self.solarize_threshold, 0, 1)

    def for_local_crops(self) -> ViewConfig:
        """The recipe of the small crops: the first view's, at `local_size` and
        `local_crop_scale`."""
        return replace(
            self.for_view(0), size=self.local_size, crop_scale=self.local_crop_scale, local_crops=0
        )

    def for_view(self, index: int) -> ViewConfig:
        """The recipe of view `index`: odd views take the `second_*` probabilities when set."""
        if index % 2 == 0:
            return replace(self, second_blur_p=None, second_solarize_p=None)
        blur_p, solarize_p = self.second_blur_p, self.second_solarize_p
        return replace(
            self,
            blur_p=self.blur_p if blur_p is None else blur_p,
            solarize_p=self.solarize_p if solarize_p is None else solarize_p,
            second_blur_p=None,
            second_solarize_p=None,
        )


def _float_pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    return float(value[0]), float(value[1])
