"""Biplanar prediction: an AP and a lateral radiograph -> a 3D label volume (Swin-X2S).

:class:`X2SPredictor` prepares both views like the training DRRs
(:mod:`medswin.transforms.radiograph`), runs the network once and applies the official rule: the
two branches' logits are summed, then argmax. The prepared views are exactly the model's window
(``roi_size`` (X, Z) and (Y, Z)), so the official Gaussian double sliding window is a single
window here and its weights cancel; there is nothing to stitch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import CancelledError
from medswin.io.image import Image
from medswin.models.card import ModelCard
from medswin.qc.core import QualityReport

__all__ = ["X2SPrediction", "X2SPredictor", "view_position_conflict"]

log = logging.getLogger(__name__)


@dataclass
class X2SPrediction:
    """What :meth:`X2SPredictor.predict` returns.

    Attributes:
        labels: ``(1, X, Y, Z)`` label volume (uint8) with physical spacing, axes LPI, centred on the isocentre.
        probabilities: ``(K, X, Y, Z)`` softmax of the summed logits when asked for, else ``None``.
        views: the two network inputs ``(X, Z)`` / ``(Y, Z)`` in [0, 1] (for display and checks).
        notes: how each radiograph was read (orientation, pixel-size source).
        timings: seconds for ``prepare``, ``inference``, ``qc`` and ``total``; the predictor's first prediction
            also holds ``export`` and ``compile`` (OpenVINO / ONNX Runtime), which ``total`` excludes.
        quality: the checks run on this prediction and its films (:mod:`medswin.qc`).
    """

    labels: Image
    probabilities: Image | None
    views: tuple[np.ndarray, np.ndarray]
    notes: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    quality: QualityReport = field(default_factory=QualityReport)


#: steps :meth:`X2SPredictor.predict` reports progress for: reading, preparing the views, the network.
_STEPS = 3
_FRONTAL = {"AP", "PA"}
_LATERAL = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}


def view_position_conflict(
    image: Image, view: str, roles: tuple[str, str] = ("--ap", "--lateral")
) -> str | None:
    """A warning when a DICOM's ViewPosition says the image is the other view (AP/PA vs LL/RL).

    The two inputs are otherwise accepted in either order, and a lateral fed as the AP silently
    gives a wrong volume.

    Args:
        image: the radiograph (its ``meta["dicom"]["ViewPosition"]``, when it has one).
        view: the role it was given, ``"ap"`` or ``"lateral"``.
        roles: how the caller names the AP and the lateral input (the CLI's options by default; a
            viewer says e.g. ``("AP film", "lateral film")``).
    """
    stated = str((image.meta.get("dicom") or {}).get("ViewPosition") or "").strip().upper()
    other = _LATERAL if view == "ap" else _FRONTAL
    if stated not in other:
        return None
    where = image.meta.get("path", f"<{view} image>")
    given = roles[0] if view == "ap" else roles[1]
    return (
        f"{where}: DICOM ViewPosition {stated} is a {'lateral' if view == 'ap' else 'frontal (AP/PA)'} view, "
        f"but it was given as {given}; are {roles[0]} and {roles[1]} swapped?"
    )


class X2SPredictor:
    """3D labels from two radiographs with one Swin-X2S model.

    Args:
        model: a medswin checkpoint path or shipped name (``"demo-x2s"``), or a module with ``card``.
        card: the card, when ``model`` is a module.
        device: ``"auto"`` (default: a CUDA GPU when torch sees one, else the CPU), ``"cpu"``, ``"cuda"`` ...
        precision: ``"auto"`` (default; see :class:`~medswin.inference.Predictor`), ``"fp32"``,
            ``"bf16"`` or ``"fp16"`` (autocast; the sum and argmax stay float32).
        save_probabilities: also return the class probabilities.
        runtime: ``None`` (default: ``$MEDSWIN_RUNTIME``, else ``"auto"``), ``"auto"``, ``"torch"``,
            ``"openvino"`` or ``"onnxruntime"`` (see
            :class:`~medswin.inference.Predictor`); the two-view network is exported once and cached.
            One network call per pair rarely repays an export, so ``auto`` runs torch until this
            machine's calibration, or a long run of pairs, says otherwise.
        tune_allocator / threads: CPU runtime settings, as :class:`~medswin.inference.Predictor` takes them.
    """

    def __init__(
        self,
        model: Any,
        *,
        card: ModelCard | None = None,
        device: str = "auto",
        precision: str = "auto",
        save_probabilities: bool = False,
        runtime: str | None = None,
        tune_allocator: bool = True,
        threads: int | None = None,
    ) -> None:
        from medswin.inference.backends import RunnerSettings
        from medswin.inference.predictor import build_runner, load_for_inference
        from medswin.tasks import BIPLANAR

        loaded = load_for_inference(
            model,
            card,
            BIPLANAR,
            device=device,
            precision=precision,
            runtime=runtime,
            tune_allocator=tune_allocator,
            threads=threads,
        )
        self.device, self.runtime, self.choices = loaded.device, loaded.runtime, loaded.choices
        precision = loaded.precision
        self.network, self.card = loaded.network, loaded.card
        self.precision = precision
        self.save_probabilities = bool(save_probabilities)
        self.runner = build_runner(
            self.network, self.card, self.runtime, RunnerSettings(self.device.type, precision, 1, threads)
        )

    def __repr__(self) -> str:
        return (
            f"X2SPredictor(model {self.card.id!r}, device {self.device}, runtime {self.runtime}, "
            f"precision {self.precision})"
        )

    def logits(self, ap: np.ndarray, lateral: np.ndarray) -> Any:
        """Summed logits ``(B, K, X, Y, Z)`` float32 of prepared views ``(B, 1, X, Z)`` / ``(B, 1, Y, Z)``."""
        from medswin.models.swin_x2s import fuse_view_logits

        return fuse_view_logits(*self.branch_logits(ap, lateral))

    def branch_logits(self, ap: np.ndarray, lateral: np.ndarray) -> tuple[Any, Any]:
        """The AP branch's and the lateral branch's own logits ``(B, K, X, Y, Z)`` (any runtime)."""
        import torch

        a = torch.as_tensor(ap, dtype=torch.float32, device=self.device)
        b = torch.as_tensor(lateral, dtype=torch.float32, device=self.device)
        self.runner.plan(1)
        with torch.inference_mode():
            out_a, out_b = self.runner(a, b)
        return out_a, out_b

    def predict(
        self,
        ap: Image | str | Path,
        lateral: Image | str | Path,
        *,
        orientations: tuple[str | None, str | None] = (None, None),
        pixel_spacing: tuple[float | None, float | None] = (None, None),
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], bool] | Any | None = None,
    ) -> X2SPrediction:
        """Label volume of one radiograph pair (Images or file paths; see :func:`prepare_views` for the options).

        Args:
            progress: called as ``progress(done, total, message)`` before each of the three steps
                (reading, preparing the views, the network) and ``(3, 3, "done")`` at the end.
            cancel: a callable returning True (or an object with ``is_set()``), asked before each step
                and after the network; a viewer's Cancel button.

        The prediction's ``quality`` holds the X-ray checks (:mod:`medswin.qc.x2s`): the agreement of
        the AP and lateral branches' own reconstructions, the side of one-sided organs, and volumes
        against the card's ranges when it has them. The labels are never changed by them.

        Raises:
            CancelledError: when ``cancel`` asked to stop (nothing is returned).
            UnusableRadiographError: a film without a usable pixel size or of implausible size, or the
                same film given as both views (the message names the files and the fix).
        """
        import torch

        from medswin.io.readers import read_image
        from medswin.models.swin_x2s import fuse_view_logits
        from medswin.qc.x2s import refuse_same_film, view_agreement, x2s_quality
        from medswin.transforms.radiograph import output_grid, prepare_views

        is_cancelled = getattr(cancel, "is_set", cancel)

        def step(done: int, message: str) -> None:
            if is_cancelled is not None and is_cancelled():
                raise CancelledError(f"biplanar prediction cancelled before {message}")
            if progress is not None:
                progress(done, _STEPS, message)

        start = time.perf_counter()
        step(0, "reading radiographs")
        ap_image = ap if isinstance(ap, Image) else read_image(ap)
        lateral_image = lateral if isinstance(lateral, Image) else read_image(lateral)
        warnings = {}
        for view, image in (("ap", ap_image), ("lateral", lateral_image)):
            conflict = view_position_conflict(image, view)
            if conflict:
                log.warning("%s", conflict)
                warnings[view] = conflict
        step(1, "preparing the views")
        front, side, spacing = prepare_views(
            ap_image, lateral_image, self.card, orientations=orientations, pixel_spacing=pixel_spacing
        )
        where = (
            str(ap_image.meta.get("path", "<AP image>")),
            str(lateral_image.meta.get("path", "<lateral image>")),
        )
        refuse_same_film(front.array, side.array, where)
        prepared = time.perf_counter()
        step(2, "network")
        logits_ap, logits_lateral = self.branch_logits(front.array[None, None], side.array[None, None])
        logits = fuse_view_logits(logits_ap, logits_lateral)
        labels = logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
        done = time.perf_counter()
        agreement = view_agreement(
            logits_ap.argmax(dim=1)[0], logits_lateral.argmax(dim=1)[0], self.card.label_names()
        )
        step(_STEPS, "done")
        meta = {"model": self.card.id, "source": "medswin x2s predict", "ap": where[0], "lateral": where[1]}
        grid = output_grid(self.card, spacing, meta)
        label_image = grid.with_array(labels[None], kind="label")
        quality = x2s_quality(label_image, self.card, agreement)
        checked = time.perf_counter()
        probabilities = None
        if self.save_probabilities:
            soft = torch.softmax(logits, dim=1)[0].cpu().numpy().astype(np.float32)
            probabilities = Image(soft, grid.spacing, grid.origin, grid.direction, "intensity", dict(meta))
        log.debug("x2s prediction %s in %.2f s", labels.shape, done - start)
        return X2SPrediction(
            labels=label_image,
            probabilities=probabilities,
            views=(front.array, side.array),
            notes={
                "ap": front.notes + ([warnings["ap"]] if "ap" in warnings else []),
                "lateral": side.notes + ([warnings["lateral"]] if "lateral" in warnings else []),
            },
            timings={
                "prepare": prepared - start,
                "inference": done - prepared,
                "qc": checked - done,
                "total": checked - start,
                **self.runner.pop_timings(),  # once: the prediction that built it
            },
            quality=quality,
        )
