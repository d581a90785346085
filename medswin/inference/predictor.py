"""The one ``Predictor``: an :class:`~medswin.io.Image` in, labels on the input's own grid out.

Steps for one image (each timed in ``Prediction.timings``):

1. ``preprocess`` -- the card's MONAI transforms take the image onto the *model grid*
   (orientation, spacing, intensity; :mod:`medswin.transforms.preprocessing`);
2. ``inference`` -- sliding windows with Gaussian blending (MONAI's window grid and weights),
   optional mirror test-time augmentation, reduced to labels plane by plane as soon as a plane
   is complete (:mod:`medswin.inference.stitching`): argmax for softmax cards, thresholded
   regions painted in order for sigmoid cards;
3. ``resample`` -- the label map (nearest neighbour, never probabilities) and, when asked, the
   probabilities (linear) are sampled onto the input's exact grid through the two affines;
4. ``postprocess`` -- optional subset / connected-component clean-up / remap (:class:`Postprocess`);
5. ``qc`` -- the quality checks of :func:`medswin.qc.assess.assess_volume` fill ``Prediction.quality``
   (the mean top-class probability per structure is gathered in step 2, plane by plane).

Memory: the full-resolution ``classes x volume`` float32 buffer of MONAI's sliding window is never
made unless ``save_probabilities=True``. For a 512x512x600 CT at 0.78x0.78x2.5 mm and the BTCV
card (14 classes, 1.5x1.5x2 mm, 96³ windows; model grid 267x267x750), measured:

* reading: the int16 volume, 0.3 GB;
* preprocessing: MONAI ``Spacing``'s sampling grid and temporaries, ~2.4 GB for 53 M output voxels,
  freed when it returns; the model-grid input that stays is 0.2 GB float32;
* inference: stitch slab 14 x 96 x 267 x 267 x 4 B = 0.38 GB, labels 53 MB (uint8), plus the
  network activations of ``sw_batch_size`` windows (~1-2 GB at feature size 12);
* back to the input grid: 157 MB of uint8 labels.

So the peak is the preprocessing transient, 3.4 GB RSS in all, against 12.5 GB for the plain MONAI
flow, whose stitching buffer alone is 14 x 267 x 267 x 750 x 4 B = 3.0 GB (plus its count map,
float32 argmax and full-size inverse resampling); ``benchmarks/bench_predict.py`` measures both
with a stand-in 1x1x1 network so that only the pipeline counts.

Speed on CPU: :func:`medswin.inference.runtime.configure_cpu_runtime` keeps freed memory in the
process (the kernel's page faults dominated otherwise), MONAI's SDPA window attention is switched
on under ``torch.inference_mode`` (same weights, same outputs to ~1e-6), and ``precision="bf16"``
runs the network under bf16 autocast (AVX-512 BF16/AMX CPUs; blending stays float32).

Runtimes: ``runtime="openvino"`` or ``"onnxruntime"`` run each window batch through a network
exported once and cached (:mod:`medswin.inference.backends`); everything around the window call
(padding, window grid, blending, stitching, TTA) is the same code for every runtime.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import CancelledError, CheckpointError, GeometryError, MedSwinError
from medswin.inference.runtime import PRECISIONS
from medswin.io.image import Image
from medswin.models.card import ModelCard
from medswin.models.inputs import ModelInputError
from medswin.qc.confidence import AgreementGatherer, ConfidenceGatherer
from medswin.qc.core import Check, QualityReport
from medswin.tasks import VOLUME, TaskKind, require_task
from medswin.transforms.postprocess import (
    Postprocess,
    label_numpy_dtype,
    logits_to_labels,
    logits_to_probabilities,
    probabilities_to_input_labels,
)
from medswin.transforms.preprocessing import preprocess, to_input_grid

__all__ = [
    "PRECISIONS",
    "LoadedModel",
    "Prediction",
    "Predictor",
    "ProgressCallback",
    "inference_device",
    "load_for_inference",
    "resolve_network",
]

log = logging.getLogger(__name__)

#: ``progress(done, total, message)``: windows done out of total, and what is happening.
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class Prediction:
    """The result of :meth:`Predictor.predict`.

    Attributes:
        labels: one-channel label map on the input's exact grid (uint8, or uint16 for labels > 255).
        probabilities: ``(K, *input shape)`` float32 on the input grid (softmax over labels, or
            sigmoid per region channel) when ``save_probabilities`` was set, else ``None``.
        timings: seconds per step: ``preprocess``, ``inference``, ``resample``, ``postprocess``, ``qc``
            (the quality checks at the end; the confidence is gathered during ``inference``), ``total``;
            the predictor's first prediction also holds ``export`` and ``compile`` (OpenVINO / ONNX
            Runtime: exporting the network, 0 when cached, and loading it), which ``total`` excludes.
        card: the model card that produced it.
        windows: sliding windows run (each ``2**d`` forward passes with test-time augmentation).
        runtime: what ran the windows: ``{"name", "version", "precision"}``.
        quality: the checks run on this prediction and its input (:mod:`medswin.qc`); recorded
            by every front end, never used to change ``labels``.
    """

    labels: Image
    probabilities: Image | None
    timings: dict[str, float]
    card: ModelCard
    windows: int = 0
    runtime: dict[str, Any] | None = None
    quality: QualityReport = field(default_factory=QualityReport)


def resolve_network(source: Any, card: ModelCard | None, device: str) -> tuple[Any, ModelCard]:
    """``(network, card)`` from a module (+ card), a ModelCard with shipped weights, or a ``-m`` spec."""
    import torch

    from medswin.models.checkpoints import load_checkpoint
    from medswin.models.resolve import resolve_model, shipped_weights

    if isinstance(source, torch.nn.Module):
        if card is None:
            raise MedSwinError(
                "Predictor(model) needs card=: the model card says how to preprocess and label"
            )
        return source, card
    if isinstance(source, ModelCard):
        weights = shipped_weights(source.id)
        if weights is None:
            raise CheckpointError(
                f"model card {source.id!r} comes without weights; pass a medswin checkpoint (.safetensors) "
                "or import official weights with `medswin import-checkpoint`"
            )
        return load_checkpoint(weights, device)
    if isinstance(source, str | Path):
        network, resolved = resolve_model(source, device)
        if network is None:
            raise CheckpointError(
                f"{source}: names model card {resolved.id!r} but no weights; pass a medswin checkpoint "
                "(.safetensors) or import official weights with `medswin import-checkpoint`"
            )
        return network, resolved
    raise TypeError(
        f"Predictor needs a torch module, a ModelCard or a checkpoint path/id, got {type(source).__name__}"
    )


def inference_device(
    device: str, precision: str, *, tune_allocator: bool = True, threads: int | None = None
) -> Any:
    """The ``torch.device`` to predict on, after checking ``precision`` and that a CUDA device exists;
    on CPU the runtime (allocator, threads) is configured first."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise MedSwinError(f"device {device!r} was asked for, but this torch build sees no CUDA GPU")
    if chosen.type == "cpu":
        from medswin.inference.runtime import configure_cpu_runtime

        configure_cpu_runtime(tune_allocator=tune_allocator, threads=threads)
    return chosen


def choose_execution(
    device: str,
    precision: str,
    runtime: str | None,
    *,
    tune_allocator: bool = True,
    threads: int | None = None,
) -> tuple[Any, str, str, dict[str, dict[str, str]]]:
    """``(torch.device, runtime, precision, choices)`` with ``auto`` resolved for this machine.

    ``choices`` says what was chosen and why (``{"device": {"value", "why"}, ...}``); it is logged
    once and recorded with every prediction, so a result says what produced it.
    """
    from medswin.inference.backends import check_precision, choose_runtime
    from medswin.inference.runtime import AUTO, default_runtime, resolve_device, resolve_precision

    device_name, device_why = resolve_device(device)
    asked_why = "asked for"
    if runtime is None:  # not given: $MEDSWIN_RUNTIME, else auto
        runtime, asked_why = default_runtime()
    import torch

    device_type = torch.device(device_name).type
    chosen_runtime = choose_runtime(runtime, device_type)
    chosen_precision, precision_why = resolve_precision(precision, device_type, chosen_runtime)
    check_precision(chosen_runtime, chosen_precision)
    chosen_device = inference_device(
        device_name, chosen_precision, tune_allocator=tune_allocator, threads=threads
    )
    if runtime != AUTO:
        runtime_why = asked_why
    elif chosen_runtime == AUTO:
        runtime_why = "auto: torch until another runtime is measured faster on this machine"
    else:
        runtime_why = f"auto: {chosen_runtime} on {device_type}" + (
            ""
            if device_type != "cpu"
            else " (no other CPU runtime installed: pip install 'medswin[openvino]')"
        )
    choices = {
        "device": {"value": str(chosen_device), "why": device_why},
        "precision": {"value": chosen_precision, "why": precision_why},
        "runtime": {"value": chosen_runtime, "why": runtime_why},
    }
    if AUTO in (device, precision, runtime):
        log.info(
            "running on %s (%s), %s (%s), runtime %s",
            chosen_device,
            device_why,
            chosen_precision,
            precision_why,
            chosen_runtime,
        )
    return chosen_device, chosen_runtime, chosen_precision, choices


def build_runner(network: Any, card: ModelCard, runtime: str, settings: Any) -> Any:
    """The window runner for ``runtime`` as :func:`choose_execution` resolved it (``auto`` measures per
    machine) with :class:`~medswin.inference.backends.RunnerSettings`; the seconds spent exporting
    and compiling are in its ``pop_timings()``."""
    from medswin.inference.auto_runtime import AutoRunner
    from medswin.inference.backends import runner_class

    cls = AutoRunner if runtime == "auto" else runner_class(runtime)
    return cls.create(network, card, settings)


#: share of a GPU's free memory the volume and stitching buffers may take (the rest: network activations).
GPU_VOLUME_SHARE = 0.5


def stitch_device(device: Any, shape: Any, card: ModelCard, *, full_outputs: bool) -> Any:
    """Where the model-grid volume and the stitching buffers live: ``device``, or the CPU for a GPU
    whose free memory they would not fit in (then the volume is pinned and only windows travel).

    Bytes counted for a ``(C, *S)`` volume with K classes: the float32 volume, one slab of float32
    running sums as deep as the largest window side (``K x roi x S / min(S)``), the uint8 labels or,
    with ``full_outputs``, K float32 values per voxel; they may take :data:`GPU_VOLUME_SHARE` of it.
    """
    import torch

    if device.type != "cuda":
        return device
    channels, *spatial = (int(n) for n in shape)
    voxels = int(np.prod(spatial))
    classes = max(card.num_classes, 1)
    slab = classes * max(card.roi_size) * voxels // max(min(spatial), 1)
    need = 4 * (channels * voxels + slab) + (4 * classes * voxels if full_outputs else voxels)
    free, _ = torch.cuda.mem_get_info(device)
    if need <= GPU_VOLUME_SHARE * free:
        return device
    log.info(
        "the volume and its stitching buffers (%.1f GB) do not fit in half of %s's free %.1f GB: kept in pinned "
        "host memory, windows sent one batch at a time",
        need / 1e9,
        device,
        free / 1e9,
    )
    return torch.device("cpu")


def staged(window_predictor: Callable[[Any], Any], device: Any) -> Callable[[Any], Any]:
    """``window_predictor`` for windows cut from a host volume: each batch to ``device``, logits back."""

    def run(x: Any) -> Any:
        return window_predictor(x.to(device, non_blocking=True)).to(x.device)

    return run


def runtime_record(runner: Any, device: Any, choices: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``Prediction.runtime``: what ran the windows, on which device, and every choice with its reason
    (``auto``'s runtime choice is made per case, so the runner says what it chose and why)."""
    described = runner.describe()
    choice = described.pop("choice", None)
    if choice is not None:
        choices = {**choices, "runtime": {"value": described["name"], "why": choice}}
    return {**described, "device": str(device), "choices": choices}


class Predictor:
    """Segment images with one model: preprocessing, sliding window, TTA, precision, the way back.

    Args:
        model: a ``torch.nn.Module`` (then ``card`` is required), a medswin checkpoint path, a card
            path/preset id with shipped weights (anything :func:`medswin.models.resolve_model`
            accepts), or a :class:`ModelCard` whose weights are shipped.
        card: the model card, when ``model`` is a module.
        device: ``"auto"`` (default: a CUDA GPU when torch sees one, else the CPU), ``"cpu"``,
            ``"cuda"``, ``"cuda:1"`` ...
        precision: ``"auto"`` (default, :func:`~medswin.inference.runtime.resolve_precision`: bf16 on
            GPUs and CPUs with AVX-512 BF16/AMX, fp32 elsewhere); ``"fp32"``; ``"bf16"`` (autocast);
            ``"fp16"`` (autocast; GPUs). Blending and thresholds stay float32. What was chosen and
            why is in :attr:`choices` and each prediction's ``runtime``.
        overlap: sliding-window overlap in [0, 1); ``None`` takes the card's.
        sw_batch_size: windows per network call (1 is fastest on CPU).
        tta: mirror test-time augmentation: average over every combination of flips of the
            network's spatial axes (8 passes in 3D, 4 for 2D models).
        mode: window blending, ``"gaussian"`` (sigma ``card.sigma_scale`` x window) or ``"constant"``;
            ``None`` (default) takes the card's ``blend``, the protocol the model's source used.
        postprocess: clean-up applied to the labels on the input grid.
        save_probabilities: also return probabilities on the input grid (needs the full
            ``K x volume`` float32 buffer on the model grid, plus the same on the input grid).
        fast_attention: use MONAI's scaled-dot-product window attention during prediction
            (SwinUNETR; same weights, outputs equal to ~1e-6, ~2x faster on CPU).
        tune_allocator / threads: CPU runtime settings, see
            :func:`medswin.inference.runtime.configure_cpu_runtime`.
        runtime: what runs each window batch: ``None`` (default: ``$MEDSWIN_RUNTIME`` when set, else
            ``"auto"``); ``"auto"`` (torch on GPUs; on CPUs torch until
            OpenVINO is measured faster on this machine, see :mod:`medswin.inference.auto_runtime`);
            ``"torch"``; ``"openvino"`` / ``"onnxruntime"`` (CPU; the network is exported once per
            weights, roi and ``sw_batch_size`` and cached, see :mod:`medswin.inference.backends`).
    """

    def __init__(
        self,
        model: Any,
        *,
        card: ModelCard | None = None,
        device: str = "auto",
        precision: str = "auto",
        overlap: float | None = None,
        sw_batch_size: int = 1,
        tta: bool = False,
        mode: str | None = None,
        postprocess: Postprocess | None = None,
        save_probabilities: bool = False,
        fast_attention: bool = True,
        tune_allocator: bool = True,
        threads: int | None = None,
        runtime: str | None = None,
    ) -> None:
        from medswin.inference.backends import RunnerSettings

        if mode not in (None, "gaussian", "constant"):
            raise ValueError(f"mode must be 'gaussian' or 'constant', got {mode!r}")
        if sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {sw_batch_size}")
        loaded = load_for_inference(
            model,
            card,
            VOLUME,
            device=device,
            precision=precision,
            runtime=runtime,
            tune_allocator=tune_allocator,
            threads=threads,
        )
        self.device, self.runtime, self.choices = loaded.device, loaded.runtime, loaded.choices
        precision = loaded.precision
        network, self.card = loaded.network, loaded.card
        check_window = getattr(network, "check_input", None)
        if check_window is not None:  # a card whose window the network cannot take fails here, not per case
            try:
                check_window((1, len(self.card.channels), *self.card.roi_size))
            except ModelInputError as error:
                raise ModelInputError(
                    f"model {self.card.id!r}: its card's roi_size does not fit ({error})"
                ) from None
        self.network = network
        self.precision = precision
        self.overlap = float(self.card.overlap if overlap is None else overlap)
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        self.sw_batch_size = int(sw_batch_size)
        self.tta = bool(tta)
        self.mode = mode or self.card.blend
        self.postprocess = postprocess or Postprocess()
        self.save_probabilities = bool(save_probabilities)
        self.fast_attention = bool(fast_attention)
        self._agreement: AgreementGatherer | None = None  # set while a --tta prediction runs
        self.runner = build_runner(
            self.network,
            self.card,
            self.runtime,
            RunnerSettings(self.device.type, precision, self.sw_batch_size, threads),
        )

    @property
    def input_settings(self) -> dict[str, Any]:
        """How inputs are read beyond the image (:class:`~medswin.inference.contract.PredictorLike`): nothing."""
        return {}

    def __repr__(self) -> str:
        return (
            f"Predictor(model {self.card.id!r}, device {self.device}, runtime {self.runtime}, precision {self.precision}, "
            f"overlap {self.overlap}, tta {self.tta}, sw_batch_size {self.sw_batch_size})"
        )

    # ------------------------------------------------------------------ network call
    @contextlib.contextmanager
    def _attention_mode(self) -> Iterator[None]:
        """Switch MONAI's SDPA window attention on for the duration (it only acts without autograd)."""
        modules = [m for m in self.network.modules() if hasattr(m, "use_flash_attention")]
        before = [m.use_flash_attention for m in modules]
        try:
            if self.fast_attention:
                for m in modules:
                    m.use_flash_attention = True
            yield
        finally:
            for m, value in zip(modules, before):
                m.use_flash_attention = value

    def _forward(self, x: Any) -> Any:
        """Network logits ``(B, K, *roi)`` float32 for ``x`` ``(B, C, *roi)``, averaged over mirrors with TTA."""
        import torch

        out = self.runner(x)
        if not self.tta:
            return out
        axes = range(2, x.ndim)
        combos = [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]
        agreement = self._agreement
        plain = self._window_labels(out) if agreement is not None else None
        for flip in combos:
            flipped = torch.flip(self.runner(torch.flip(x, flip)), flip)
            if agreement is not None:
                agreement.add(plain, self._window_labels(flipped))
            out += flipped
        return out.div_(len(combos) + 1)

    def _window_labels(self, logits: Any) -> Any:
        """Labels of each window of a batch of logits ``(B, K, *roi)``, for the TTA agreement check."""
        import torch

        return torch.stack([logits_to_labels(window, self.card) for window in logits])

    def _window_predictor(self, slice_axis: int | None) -> Callable[[Any], Any]:
        if slice_axis is None:
            return self._forward
        axis = 2 + slice_axis

        def per_slice(x: Any) -> Any:  # (B, C, *roi with 1 at slice_axis): a batch of slices for a 2D model
            return self._forward(x.squeeze(axis)).unsqueeze(axis)

        return per_slice

    # ------------------------------------------------------------------ checks
    def _check(self, image: Image) -> int | None:
        """Channel and dimension checks; returns the slice axis for 2D models on volumes (else None)."""
        where = image.meta.get("path", "<in memory>")
        card = self.card
        if image.kind != "intensity":
            raise GeometryError(f"{where}: is a label image; predict needs the intensity image")
        if image.num_channels != len(card.channels):
            raise ModelInputError(
                f"{where}: the image has {image.num_channels} channel(s) but model {card.id!r} takes "
                f"{len(card.channels)} ({', '.join(card.channels)}); give the channels in that order as one "
                "multi-channel image"
            )
        if card.spatial_dims == image.spatial_dims:
            return None
        if card.spatial_dims == 2 and image.spatial_dims == 3:
            if card.slice_axis is None:
                raise ModelInputError(
                    f"{where}: model {card.id!r} is 2D and its card sets no slice_axis, so it cannot run on a volume"
                )
            return int(card.slice_axis)
        raise ModelInputError(f"{where}: model {card.id!r} is {card.spatial_dims}D but the image is 2D")

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        image: Image,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | Any | None = None,
    ) -> Prediction:
        """Segment ``image`` (C, X, Y[, Z]); labels come back on its exact grid.

        Args:
            image: intensity image with ``len(card.channels)`` channels in the card's order.
            progress: called as ``progress(done, total, message)``: ``(0, total)`` before the first
                window, after every network call, and ``(total, total)`` while resampling.
            cancel: a callable returning True (or an object with ``is_set()``, e.g.
                ``threading.Event``) to stop; checked before and between windows.

        Raises:
            CancelledError: when ``cancel`` asked to stop (nothing is returned or written).
            ModelInputError: wrong number of channels, or a 3D model on a 2D image.
        """
        import torch

        from medswin.inference.stitching import sliding_window_reduce

        slice_axis = self._check(image)
        is_cancelled = getattr(cancel, "is_set", cancel)
        timings: dict[str, float] = {}
        start = time.perf_counter()

        model_input = preprocess(image, self.card)
        model_affine = np.asarray(model_input.affine.detach().cpu().numpy(), dtype=np.float64)
        by_probability = self.card.resample == "probabilities"
        tensor = model_input.as_tensor()
        home = stitch_device(
            self.device, tensor.shape, self.card, full_outputs=by_probability or self.save_probabilities
        )
        tensor = tensor.to(home) if home == self.device else tensor.pin_memory()
        del model_input
        timings["preprocess"] = time.perf_counter() - start

        roi = list(self.card.roi_size)
        if slice_axis is not None:
            roi.insert(slice_axis, 1)

        passes = 2**self.card.spatial_dims if self.tta else 1  # mirror TTA: every combination of flips

        def on_windows(done: int, total: int) -> None:
            if done == 0:  # the runner learns the case's network calls before the first (``auto`` decides)
                self.runner.plan(-(-total // self.sw_batch_size) * passes)
            if progress is not None:
                progress(done, total, "sliding window")
            if is_cancelled is not None and is_cancelled():
                raise CancelledError(f"prediction cancelled after {done} of {total} windows")

        # The card says what goes back to the input grid: labels (argmax here, nearest neighbour back)
        # or probabilities (resampled linearly, argmax there: MONAI's Invertd(nearest_interp=False)).
        confidence = ConfidenceGatherer(self.card)
        self._agreement = AgreementGatherer(self.card) if self.tta else None

        def reduce(logits: Any) -> Any:
            labels = logits_to_labels(logits, self.card)
            confidence(logits, labels)  # gathered plane by plane while stitching: no second pass
            return logits_to_probabilities(logits, self.card) if by_probability else labels

        tick = time.perf_counter()
        with torch.inference_mode(), self._attention_mode():
            windows_on = self._window_predictor(slice_axis)
            if tensor.device != self.device:  # the volume stays in pinned host memory; windows travel
                windows_on = staged(windows_on, self.device)
            result = sliding_window_reduce(
                tensor,
                windows_on,
                roi,
                reduce,
                overlap=self.overlap,
                sw_batch_size=self.sw_batch_size,
                mode=self.mode,
                sigma_scale=self.card.sigma_scale,
                keep_blended=self.save_probabilities and not by_probability,
                on_windows=on_windows,
            )
            del tensor
            probabilities = None
            if by_probability:
                probabilities = result.reduced.cpu().numpy()
            elif result.blended is not None:
                probabilities = logits_to_probabilities(result.blended, self.card, inplace=True).cpu().numpy()
                result.blended = None
        timings["inference"] = time.perf_counter() - tick

        tick = time.perf_counter()
        if progress is not None:
            progress(result.windows, result.windows, "resampling onto the input grid")
        if by_probability:
            labels = probabilities_to_input_labels(probabilities, model_affine, image, self.card)
            if not self.save_probabilities:
                probabilities = None
        else:
            labels_model = result.reduced.cpu().numpy().astype(label_numpy_dtype(self.card), copy=False)
            labels = to_input_grid(labels_model, model_affine, image, kind="label")
        windows = result.windows
        del result
        probability_image = None
        if probabilities is not None:
            probability_image = to_input_grid(probabilities, model_affine, image, kind="intensity")
            del probabilities
        timings["resample"] = time.perf_counter() - tick

        tick = time.perf_counter()
        labels = self.postprocess.apply(labels)
        timings["postprocess"] = time.perf_counter() - tick

        tick = time.perf_counter()
        agreement = self._agreement.dice() if self._agreement is not None else None
        self._agreement = None
        quality = self._assess(image, labels, confidence.means(), agreement)
        timings["qc"] = time.perf_counter() - tick
        timings["total"] = time.perf_counter() - start
        timings.update(self.runner.pop_timings())  # once: the prediction that built (or exported) it
        log.info(
            "predicted %s with %s: %d windows, %.1f s (%s)",
            "x".join(str(n) for n in image.shape),
            self.card.id,
            windows,
            timings["total"],
            ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "total"),
        )
        return Prediction(
            labels,
            probability_image,
            timings,
            self.card,
            windows,
            runtime=runtime_record(self.runner, self.device, self.choices),
            quality=quality,
        )

    def _assess(
        self, image: Image, labels: Image, confidence: dict[int, float], agreement: dict[int, float] | None
    ) -> QualityReport:
        """The quality checks of one prediction (:func:`medswin.qc.assess.assess_volume`).

        A check that cannot run is recorded as a warning naming why, not raised: the labels are fine
        and were paid for; the reader learns the verdict is missing.
        """
        from medswin.qc.assess import assess_volume

        try:
            return assess_volume(image, labels, self.card, confidence=confidence, agreement=agreement)
        except Exception as error:  # noqa: BLE001 - any bug in a check must not cost the prediction
            log.exception("quality checks failed on %s", image.meta.get("path", "<in memory>"))
            reason = f"The quality checks could not run ({type(error).__name__}: {error}); review this case by eye."
            return QualityReport((Check("qc", "warn", None, None, reason),))


# ------------------------------------------------------------------------------ one loader
# Predictor and X2SPredictor both load through load_for_inference, so a CPU runtime setting
# (threads, the allocator) added for one family reaches the other instead of being lost on the way
# (as threads once was for X-ray).
@dataclass
class LoadedModel:
    """A network ready to predict with: on its device, in eval mode, with what was chosen and why."""

    network: Any
    card: ModelCard
    device: Any  # torch.device
    runtime: str
    precision: str
    choices: dict[str, dict[str, str]]


def load_for_inference(
    model: Any,
    card: ModelCard | None,
    task: TaskKind,
    *,
    device: str = "auto",
    precision: str = "auto",
    runtime: str | None = None,
    tune_allocator: bool = True,
    threads: int | None = None,
) -> LoadedModel:
    """Resolve device, precision and runtime (configuring the CPU runtime), load the network and its
    card, and refuse a model of another family than ``task``.

    Args:
        model, card: as :class:`~medswin.inference.Predictor` takes them (a module and its card, a
            checkpoint path, a preset id or a :class:`~medswin.models.card.ModelCard`).
        task: the family the calling predictor runs (:data:`medswin.tasks.VOLUME` ...).
        device, precision, runtime: ``"auto"`` or a choice, see
            :func:`~medswin.inference.predictor.choose_execution`.
        tune_allocator / threads: CPU runtime settings, see
            :func:`medswin.inference.runtime.configure_cpu_runtime`.

    Raises:
        MedSwinError: the model is of another family (the message says how to run it).
    """
    chosen_device, chosen_runtime, chosen_precision, choices = choose_execution(
        device, precision, runtime, tune_allocator=tune_allocator, threads=threads
    )
    network, resolved = resolve_network(model, card, str(chosen_device))
    require_task(resolved, task)
    return LoadedModel(
        network.to(chosen_device).eval(), resolved, chosen_device, chosen_runtime, chosen_precision, choices
    )
