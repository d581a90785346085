"""What the batch runner needs of a predictor: one :class:`PredictorLike` contract.

:func:`~medswin.batch.runner.run_batch` drives a volume :class:`~medswin.inference.Predictor` and a
biplanar :class:`~medswin.batch.biplanar.BiplanarBatchPredictor` alike. Writing down what it reads
(instead of ``getattr(predictor, name, default)`` at each use) lets a predictor that lacks one of them
fail at the start of a batch, with the missing names, rather than record a wrong setting per case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from medswin.inference.predictor import Prediction
    from medswin.models.card import ModelCard
    from medswin.transforms.postprocess import Postprocess

__all__ = ["PredictorLike", "missing_members"]


@runtime_checkable
class PredictorLike(Protocol):
    """A predictor as :func:`~medswin.batch.runner.run_batch` sees it.

    The settings below are recorded with every case (they change what is written), so a rerun with
    other settings redoes the case; ``None`` marks a setting the predictor does not have (a
    biplanar model has no sliding window, hence no ``overlap``, ``mode`` or ``tta``).

    Attributes:
        card: the model card (id, labels, resampling, geometry of the outputs).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``, as resolved for this machine.
        runtime: what runs the network (``"torch"``, ``"openvino"`` ...), or ``"auto"`` where it is
            measured per machine (then not recorded: records of auto runs agree across machines).
        overlap / mode / tta: sliding-window overlap, window blending and mirror TTA, or ``None``.
        postprocess: the clean-up of the labels, or ``None`` for none.
        save_probabilities: whether predictions carry probabilities (then a ``probabilities`` output).
        input_settings: how the predictor reads its inputs beyond the image itself (the X-ray view
            orientations and pixel spacing), recorded beside the model settings; ``{}`` for none.
    """

    card: ModelCard
    precision: str
    runtime: str
    overlap: float | None
    mode: str | None
    tta: bool | None
    postprocess: Postprocess | None
    save_probabilities: bool

    @property
    def input_settings(self) -> dict[str, Any]: ...

    def predict(
        self,
        source: Any,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], bool] | Any | None = None,
    ) -> Prediction:
        """One case (what the batch reader returned) -> its :class:`~medswin.inference.predictor.Prediction`."""
        ...


def missing_members(predictor: object) -> list[str]:
    """The :class:`PredictorLike` members ``predictor`` lacks, in declaration order (empty when none)."""
    names = [*PredictorLike.__annotations__, "input_settings", "predict"]
    return [name for name in names if not hasattr(predictor, name)]
