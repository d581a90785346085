"""Biplanar cases in the batch runner: a Swin-X2S case is two radiographs, not channels of one grid.

:func:`~medswin.batch.runner.run_batch` reads each case with a reader and calls
``predictor.predict(source, progress=..., cancel=...)``. :func:`read_radiograph_pair` and
:class:`BiplanarBatchPredictor` give an :class:`~medswin.inference.x2s.X2SPredictor` that
interface, so ``medswin x2s predict --datalist`` has the batch contract of ``medswin predict``:
records, resume, ownership of files, read-ahead, summary and exit codes. Its outputs lie on the
model's grid (LPI, centred on the isocentre): radiographs have no volume grid to resample onto.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medswin.batch.cases import Case
from medswin.errors import ImageReadError
from medswin.io.image import Image

if TYPE_CHECKING:
    from medswin.models.card import ModelCard
    from medswin.transforms.postprocess import Postprocess

__all__ = ["RadiographPair", "read_radiograph_pair", "BiplanarBatchPredictor"]


@dataclass
class RadiographPair:
    """The two films of a biplanar case; ``meta`` is the case's (``path``, ``inputs``), as an Image's."""

    ap: Image
    lateral: Image
    meta: dict[str, Any] = field(default_factory=dict)


def read_radiograph_pair(
    case: Case, *, allow_gaps: bool = False, scratch: Path | None = None
) -> RadiographPair:
    """Read a case's AP and lateral radiograph (its two paths, in that order).

    ``allow_gaps`` is accepted for the reader interface; a radiograph is one frame.
    """
    from medswin.io.readers import read_image, require_finite

    if len(case.paths) != 2:
        raise ImageReadError(
            f"{case.source}: a biplanar case has two images (AP, lateral), got {len(case.paths)}"
        )
    ap, lateral = (require_finite(read_image(p, scratch=scratch), p) for p in case.paths)
    return RadiographPair(ap, lateral, {"path": str(case.paths[0])})


class BiplanarBatchPredictor:
    """An :class:`~medswin.inference.x2s.X2SPredictor` as the batch runner sees a predictor
    (:class:`~medswin.inference.contract.PredictorLike`).

    Args:
        predictor: the X-ray predictor.
        orientations, pixel_spacing: for every case, as ``X2SPredictor.predict`` takes them; they
            change the output, so they are part of each record's settings.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        orientations: tuple[str | None, str | None] = (None, None),
        pixel_spacing: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.predictor = predictor
        self.orientations = orientations
        self.pixel_spacing = pixel_spacing

    #: one window on the model grid, no mirror TTA, no clean-up: recorded as ``None``
    overlap: float | None = None
    mode: str | None = None
    tta: bool | None = None
    postprocess: Postprocess | None = None

    @property
    def card(self) -> ModelCard:
        return self.predictor.card

    @property
    def precision(self) -> str:
        return self.predictor.precision

    @property
    def runtime(self) -> str:
        return self.predictor.runtime

    @property
    def save_probabilities(self) -> bool:
        return self.predictor.save_probabilities

    @property
    def input_settings(self) -> dict[str, Any]:
        """How the films are read: recorded beside the model settings, so a change redoes the case."""
        return {"view_orientations": list(self.orientations), "pixel_spacing_mm": list(self.pixel_spacing)}

    def predict(
        self,
        pair: RadiographPair,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], bool] | Any | None = None,
    ) -> Any:
        """The case's :class:`~medswin.inference.predictor.Prediction` on the model grid (one window), with
        the X-ray checks' :class:`~medswin.qc.QualityReport`, which the batch runner records."""
        from medswin.inference.predictor import Prediction, runtime_record

        result = self.predictor.predict(
            pair.ap,
            pair.lateral,
            orientations=self.orientations,
            pixel_spacing=self.pixel_spacing,
            progress=progress,
            cancel=cancel,
        )
        return Prediction(
            labels=result.labels,
            probabilities=result.probabilities,
            timings=result.timings,
            card=self.card,
            windows=1,
            runtime=runtime_record(self.predictor.runner, self.predictor.device, self.predictor.choices),
            quality=result.quality,
        )
