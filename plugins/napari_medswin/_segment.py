"""Qt-free segmentation run for the Segment widget: pick a model, run the shared Predictor, make layers.

The widget calls :meth:`SegmentationRunner.run` in a worker thread; everything model- or
tensor-related is :class:`medswin.inference.Predictor`'s job (torch is imported there, lazily).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import CheckpointError, GeometryError
from medswin.io.geometry import reorient
from medswin.io.image import Image
from medswin.transforms.postprocess import Postprocess
from napari_medswin._layers import LayerDataTuple, image_to_layer_data, layer_to_image
from napari_medswin._quality import quality_metadata

__all__ = [
    "CHECKPOINT_CHOICE",
    "ModelChoice",
    "card_summary_text",
    "clean_up_layer_data",
    "clean_up_settings",
    "SegmentationRunner",
    "model_card",
    "model_choices",
    "model_key",
    "intended_use",
    "prediction_layer_data",
]

log = logging.getLogger(__name__)

#: the model-menu entry that means "use the checkpoint file chosen below".
CHECKPOINT_CHOICE = "checkpoint file…"

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ModelChoice:
    """One model medswin knows: runnable here (weights on this computer) or not yet, with how to get it.

    Attributes:
        spec: what ``resolve_model`` takes (a shipped name, a weights-cache name, a preset id).
        has_weights: True when the weights are on this computer (shipped, pulled or imported).
        how: for models without weights, the command that brings them ("" otherwise).
    """

    spec: str
    has_weights: bool
    how: str = ""

    @property
    def label(self) -> str:
        return self.spec if self.has_weights else f"{self.spec}: {self.how}"


def model_choices(*, radiographs: bool = False) -> list[ModelChoice]:
    """Every model of one kind medswin knows: runnable ones first (shipped, then pulled/imported), then the rest.

    Args:
        radiographs: False for volume models (an image layer in, Segment), True for biplanar X-ray
            models (Swin-X2S: an AP and a lateral radiograph in); a card's ``radiographs`` section
            tells them apart.

    A published model not yet pulled says ``medswin weights pull <name>``; a preset card whose weights
    are published elsewhere says how to import them (its card's ``weights`` note).
    """

    def wanted(card: Any) -> bool:  # a card of the kind asked for
        return (card.radiographs is not None) == radiographs

    from medswin.errors import MedSwinError
    from medswin.models import list_presets
    from medswin.models.checkpoints import read_checkpoint_card
    from medswin.models.resolve import list_shipped_weights
    from medswin.weights import cached_weights, list_cached_weights, list_weights

    runnable: list[ModelChoice] = []
    for name in list_shipped_weights():
        if wanted(model_card(name)):
            runnable.append(ModelChoice(name, True))
    for name in list_cached_weights():
        if name in {c.spec for c in runnable}:
            continue
        try:
            card = read_checkpoint_card(cached_weights(name) or name)
        except MedSwinError as error:  # a broken file in the cache: say so in the log, offer the rest
            log.warning("weights cache: %s", error)
            continue
        if wanted(card):
            runnable.append(ModelChoice(name, True))
    known = {c.spec for c in runnable}
    missing: list[ModelChoice] = []
    for entry in list_weights():
        if entry.name not in known and entry.predicts and wanted(entry.model_card()):
            missing.append(ModelChoice(entry.name, False, f"medswin weights pull {entry.name}"))
    published_cards = {c.spec for c in missing} | known
    for name in list_presets():
        if name in published_cards:
            continue
        card = model_card(name)
        if wanted(card):
            hint = (
                card.provenance.get("weights")
                or f"medswin import-checkpoint FILE --preset {name} -o {name}.safetensors"
            )
            missing.append(ModelChoice(name, False, hint))
    return runnable + missing


def card_summary_text(card: Any) -> str:
    """The card's summary (:meth:`~medswin.models.ModelCard.summary`) as lines ``field: value``."""
    return "\n".join(f"{key}: {value}" for key, value in card.summary().items())


def model_card(spec: str) -> Any:
    """The :class:`~medswin.models.ModelCard` of a model spec, without loading weights.

    A checkpoint saved before cards stated ``body_region``/``intended_use`` (the shipped demo, older
    pulls) takes them from the shipped card of the same id, so its summary says what it is for.
    """
    from medswin.models import resolve_model
    from medswin.models.card import has_preset, preset_card

    card = resolve_model(spec, load_weights=False)[1]
    if not (card.body_region or card.intended_use) and has_preset(card.id):
        shipped = preset_card(card.id)
        card = card.replace(body_region=shipped.body_region, intended_use=shipped.intended_use)
    return card


def intended_use(card: Any) -> str:
    """What the model is for, as its card (or the shipped card of the same id) says; research use by default."""
    from medswin.models.card import DEFAULT_INTENDED_USE, has_preset, preset_card

    stated = card.intended_use or (preset_card(card.id).intended_use if has_preset(card.id) else "")
    return stated or DEFAULT_INTENDED_USE


def model_key(spec: str, device: str) -> tuple[str, float, str]:
    """What decides whether a loaded model can be reused: the spec, its file's modification time, the device."""
    path = Path(spec).expanduser()
    return (spec, path.stat().st_mtime if path.is_file() else 0.0, device)


class SegmentationRunner:
    """Runs the shared :class:`~medswin.inference.Predictor`, keeping it loaded between runs.

    Loading a checkpoint takes seconds, so the predictor is reused while the model (file and its
    modification time) and the device stay the same; the overlap is set per run. One run at a time
    (the widget disables Run while one is going).
    """

    def __init__(self) -> None:
        self._key: tuple[str, float, str] | None = None
        self._predictor: Any = None

    def _predictor_for(self, spec: str, device: str) -> Any:
        from medswin.inference import Predictor
        from medswin.models import resolve_model

        key = model_key(spec, device)
        if key != self._key:
            self._predictor, self._key = None, None
            model, card = resolve_model(spec, device=device)
            if model is None:
                hint = card.provenance.get("weights") or "import them with 'medswin import-checkpoint'"
                raise CheckpointError(
                    f"model {spec!r}: medswin ships its card but not its weights ({hint}); then choose "
                    f"'{CHECKPOINT_CHOICE}' and pick the .safetensors file"
                )
            self._predictor = Predictor(model, card=card, device=device)
            self._key = key
        return self._predictor

    def run(
        self,
        image: Image,
        spec: str,
        *,
        device: str = "cpu",
        overlap: float = 0.5,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        postprocess: Postprocess | None = None,
    ) -> Any:
        """Predict labels for ``image`` with model ``spec`` (shipped name, preset or checkpoint path).

        ``postprocess`` is the clean-up the CLI's ``--keep-largest``/``--min-size-mm3`` give (none by
        default). Returns the :class:`~medswin.inference.Prediction`; raises ``CancelledError`` when
        ``cancel()`` turns true, and medswin errors (naming the file) for unusable models or images.
        """
        if progress is not None:
            progress(0, 1, f"loading {Path(spec).name or spec}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        predictor = self._predictor_for(spec, device)
        predictor.overlap = float(overlap)  # settings of each run; the loaded network is reused
        predictor.postprocess = postprocess or Postprocess()
        return predictor.predict(image, progress=progress, cancel=cancel)


def prediction_layer_data(
    image: Image, prediction: Any, image_name: str, transform: Mapping[str, Any] | None = None
) -> LayerDataTuple:
    """The labels layer of a prediction: on ``image``'s grid and transform, named and coloured per model card,
    with the prediction's quality report in its metadata (the volume panel shows it).

    Args:
        image: the input the prediction was made on (its metadata goes with the labels, so saving
            them writes NIfTI headers or DICOM-SEG references of that study).
        prediction: :class:`~medswin.inference.Prediction` (``labels`` on the input grid, ``card``).
        image_name: name of the image layer; the labels layer is ``"<image_name> [<card id>]"``.
        transform: the image layer's own ``scale``/``translate``/``rotate``/``shear``/``affine``
            (:func:`~napari_medswin._layers.spatial_transform`), copied so both layers share one
            transform exactly; default: computed from ``image``'s geometry.
    """
    labels: Image = prediction.labels
    difference = labels.grid_difference(image, atol_mm=1e-4)
    if difference is not None:
        raise GeometryError(f"{image_name}: the prediction is not on the input grid ({difference})")
    card = prediction.card
    on_input = image.with_array(labels.array, kind="label")
    data, kwargs, layer_type = image_to_layer_data(
        on_input,
        f"{image_name} [{card.id}]",
        label_names=card.label_names(),
        colors=card.colors,
        extra_metadata={"model": card.id, "intended_use": intended_use(card), **quality_metadata(prediction)},
    )
    if transform is not None:
        for key in ("scale", "translate", "rotate", "shear", "affine", "axis_labels"):
            kwargs.pop(key, None)
        kwargs.update(
            {k: list(v) if k == "axis_labels" else np.array(v, copy=True) for k, v in transform.items()}
        )
    return data, kwargs, layer_type


def clean_up_settings(keep_largest: bool, min_piece_ml: float) -> Postprocess:
    """The :class:`~medswin.transforms.postprocess.Postprocess` of the widget's clean-up options.

    Args:
        keep_largest: keep only the largest connected piece of every structure (``--keep-largest``).
        min_piece_ml: remove pieces smaller than this many mL (``--min-size-mm3`` = mL × 1000); 0 keeps all.
    """
    if min_piece_ml < 0:
        raise ValueError(f"the smallest piece to keep must be >= 0 mL, got {min_piece_ml}")
    return Postprocess(keep_largest=bool(keep_largest), min_size_mm3=float(min_piece_ml) * 1000.0)


def clean_up_layer_data(
    data: Any, attributes: Mapping[str, Any], postprocess: Postprocess
) -> tuple[np.ndarray, ...]:
    """Indices (one array per axis) of the voxels of a labels layer that ``postprocess`` sets to 0.

    The clean-up runs on the image in its file's axis order, exactly as the CLI runs it (which piece
    is "largest" between two of equal size depends on the order voxels are scanned), and comes back
    as edits of the layer's own array that the layer can apply undoably.
    """
    array = np.asarray(data)
    shown = layer_to_image(array, {k: v for k, v in attributes.items() if k != "metadata"}, kind="label")
    cleaned = postprocess.apply(layer_to_image(array, attributes, kind="label"))
    back = reorient(cleaned, shown.orientation).array[0]
    if back.shape != array.shape:
        raise GeometryError(f"layer {attributes.get('name', '')!r}: the clean-up came back on another grid")
    return tuple(np.nonzero(back != array))
