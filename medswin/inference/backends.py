"""Window runners: what turns a batch of windows into logits, in torch, OpenVINO or ONNX Runtime.

Sliding window, blending, stitching and TTA do not change with the runtime; only the per-window
network call does. A runner is called like the network, ``runner(x)`` with ``x`` ``(B, C, *roi)``
(or ``runner(ap, lateral)`` for Swin-X2S), and returns float32 torch tensors.

OpenVINO and ONNX Runtime run a network exported once per model, window shape and batch size, and
cached under the weights cache (:func:`medswin.weights.weights_home`)::

    compiled/<key>/network.xml + .bin   (OpenVINO IR)  or  network.onnx   (ONNX Runtime)
    compiled/<key>/key.json             what the key was made of
    compiled/<key>/openvino-cache/      OpenVINO's own compiled blobs (per precision hint)

``<key>`` hashes the weights' SHA-256, the card id, the tensor shapes, the format, the exporting
torch and runtime versions and the ONNX opset, so a second run loads instead of exporting again.
A precision is a compile setting of OpenVINO (the IR keeps fp32 weights), so it does not split the
cache; ONNX Runtime runs fp32 only. Measured on one fs48 96³ window on an AVX-512 BF16 CPU:
torch fp32 5.2 s, ONNX Runtime fp32 5.2 s, OpenVINO fp32 4.1 s, OpenVINO bf16 2.1 s.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medswin.errors import ExportError, MedSwinError
from medswin.files import staging_folder
from medswin.inference.export import (
    EXPORT_REVISION,
    ONNX_OPSET,
    export_network,
    network_io,
    require_package,
    runtime_version,
    weights_sha256,
)
from medswin.inference.runtime import (
    AUTO,
    RUNTIME_REGISTRY,
    RuntimeSpec,
    autocast,
    cpu_has_native_bf16,
    runtime_choices,
)
from medswin.models.card import ModelCard

__all__ = [
    "Runner",
    "RunnerSettings",
    "TorchRunner",
    "OpenVINORunner",
    "OnnxRuntimeRunner",
    "choose_runtime",
    "check_precision",
    "compiled_folder",
    "cached_export",
    "export_entry",
    "runner_class",
]

log = logging.getLogger(__name__)


#: precision -> OpenVINO's INFERENCE_PRECISION_HINT.
_OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def _spec(runtime: str) -> RuntimeSpec:
    try:
        return RUNTIME_REGISTRY[runtime]
    except KeyError:
        raise ValueError(f"runtime must be one of {', '.join(runtime_choices())}, got {runtime!r}") from None


def choose_runtime(runtime: str, device_type: str) -> str:
    """The runtime that ``runtime`` means on ``device_type``; checks that it runs there.

    ``auto`` stays ``auto`` on a CPU where an auto candidate (OpenVINO) is installed: the choice is
    then measured per machine (:class:`medswin.inference.auto_runtime.AutoRunner`); it is torch on
    GPUs and where no candidate is installed.
    """
    if runtime == AUTO:
        candidates = [
            spec.name
            for spec in RUNTIME_REGISTRY.values()
            if spec.auto_candidate
            and device_type in spec.devices
            and importlib.util.find_spec(spec.package) is not None
        ]
        return AUTO if candidates else "torch"
    spec = _spec(runtime)
    if device_type not in spec.devices:
        raise MedSwinError(
            f"runtime {runtime!r} runs on {', '.join(spec.devices)} in medswin, not {device_type}; "
            f"use --device cpu, or --runtime torch on {device_type}"
        )
    return runtime


def check_precision(runtime: str, precision: str) -> None:
    """Refuse a precision the runtime cannot run (ONNX Runtime: fp32 only), naming the alternatives."""
    if runtime == AUTO:
        return
    spec = _spec(runtime)
    if precision not in spec.precisions:
        others = [name for name, other in RUNTIME_REGISTRY.items() if precision in other.precisions]
        raise MedSwinError(
            f"runtime {runtime!r} runs {', '.join(spec.precisions)} networks only, not {precision}; use "
            f"--precision {spec.precisions[0]}, or --runtime {' / '.join(others)} for {precision}"
        )


@dataclass(frozen=True)
class RunnerSettings:
    """What every runner is built with: where it runs, in which precision, windows per call, threads."""

    device_type: str
    precision: str
    batch_size: int = 1
    threads: int | None = None


class Runner(abc.ABC):
    """A window runner: ``runner(*inputs)`` like the network, float32 torch tensors out.

    ``create`` builds one (exporting and compiling where the runtime needs it), ``describe`` says what
    ran for the record, ``plan`` is told how many calls the next case makes (only ``auto`` uses it),
    and ``pop_timings`` hands over the seconds spent building (once).
    """

    name = ""

    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.timings: dict[str, float] = {}

    @classmethod
    @abc.abstractmethod
    def create(cls, network: Any, card: ModelCard, settings: RunnerSettings) -> Runner:
        """A ready runner for ``network`` (its build seconds in :attr:`timings`)."""

    @abc.abstractmethod
    def __call__(self, *inputs: Any) -> Any:
        """Logits for a batch of windows (a tuple for networks with several outputs)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": runtime_version(self.name), "precision": self.precision}

    def plan(self, calls: int) -> None:  # noqa: B027 - optional hook: only auto decides per case
        """The next case makes ``calls`` network calls; a fixed runner has nothing to decide."""

    def pop_timings(self) -> dict[str, float]:
        timings, self.timings = self.timings, {}
        return timings


class TorchRunner(Runner):
    """The torch module itself, under autocast for bf16/fp16; outputs as float32, on the module's device."""

    name = "torch"

    def __init__(self, network: Any, precision: str, device_type: str) -> None:
        super().__init__(precision)
        self.network = network
        self.device_type = device_type

    @classmethod
    def create(cls, network: Any, card: ModelCard, settings: RunnerSettings) -> TorchRunner:
        return cls(network, settings.precision, settings.device_type)

    def __call__(self, *inputs: Any) -> Any:
        with autocast(self.precision, self.device_type):
            out = self.network(*inputs)
        return tuple(o.float() for o in out) if isinstance(out, tuple | list) else out.float()


class _ExportedRunner(Runner):
    """Shared part of the exported runtimes: fixed batch (a smaller last batch is padded), numpy I/O."""

    def __init__(self, batch_size: int, precision: str, path: Path) -> None:
        super().__init__(precision)
        self.batch_size = batch_size
        self.path = path

    @classmethod
    def create(cls, network: Any, card: ModelCard, settings: RunnerSettings) -> _ExportedRunner:
        """Export (or take from the cache) and compile; ``timings`` holds ``export`` and ``compile`` seconds."""
        # the package check comes first: no minute-long export for a runtime that cannot load it
        require_package(cls.name, f"--runtime {cls.name}")
        check_precision(cls.name, settings.precision)
        path, export_seconds = cached_export(network, card, cls.name, settings.batch_size)
        start = time.perf_counter()
        runner = cls(path, settings.batch_size, settings.precision, settings.threads)  # type: ignore[call-arg]
        runner.timings = {"export": export_seconds, "compile": time.perf_counter() - start}
        return runner

    @abc.abstractmethod
    def _run(self, arrays: list[Any]) -> list[Any]:
        """The network's outputs (numpy) for full-batch float32 inputs, in the exported order."""

    def __call__(self, *inputs: Any) -> Any:
        import numpy as np
        import torch

        count = int(inputs[0].shape[0])
        if count > self.batch_size:
            raise ValueError(
                f"{self.name}: {count} windows in one call, but the network was exported for {self.batch_size}"
            )
        arrays = []
        for tensor in inputs:
            array = tensor.detach().to("cpu", torch.float32).numpy()
            if count < self.batch_size:  # the last group of windows: pad to the exported batch
                padding = np.zeros((self.batch_size - count, *array.shape[1:]), np.float32)
                array = np.concatenate([array, padding])
            arrays.append(np.ascontiguousarray(array))
        outputs = [torch.from_numpy(np.asarray(out, dtype=np.float32)[:count]) for out in self._run(arrays)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class OpenVINORunner(_ExportedRunner):
    """An OpenVINO IR compiled for the CPU with a precision hint (bf16 pays off on AVX-512 BF16/AMX)."""

    name = "openvino"

    def __init__(self, path: Path, batch_size: int, precision: str, threads: int | None = None) -> None:
        super().__init__(batch_size, precision, path)
        ov = require_package("openvino", "--runtime openvino")
        core = ov.Core()
        # OpenVINO keeps its compiled blob here and loads it next time instead of compiling again
        core.set_property({"CACHE_DIR": str(path.parent / "openvino-cache")})
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision]}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = max(1, int(threads))
        try:
            self.compiled = core.compile_model(str(path), "CPU", config)
        except Exception as error:
            raise ExportError(f"{path}: OpenVINO could not compile it for the CPU ({error})") from error
        self.request = self.compiled.create_infer_request()
        if precision == "bf16" and not cpu_has_native_bf16():
            log.warning(
                "OpenVINO bf16 on a CPU without AVX-512 BF16/AMX is emulated: measured slower than fp32 and "
                "97.5% label agreement with torch fp32 on the demo model; use --precision fp32 here"
            )

    def describe(self) -> dict[str, Any]:
        """The runtime, its version and the precision OpenVINO compiled (it runs f16 as f32 where the CPU lacks it)."""
        hint = str(
            self.compiled.get_property("INFERENCE_PRECISION_HINT")
        ).lower()  # e.g. "<Type: 'bfloat16'>"
        names = (("bfloat16", "bf16"), ("float16", "fp16"), ("float32", "fp32"))  # bfloat16 before float16
        compiled = next((ours for theirs, ours in names if theirs in hint), self.precision)
        return {"name": self.name, "version": runtime_version(self.name), "precision": compiled}

    def _run(self, arrays: list[Any]) -> list[Any]:
        results = self.request.infer(arrays)
        return [results[output] for output in self.compiled.outputs]


class OnnxRuntimeRunner(_ExportedRunner):
    """An ONNX network in ONNX Runtime's CPU provider (fp32)."""

    name = "onnxruntime"

    def __init__(self, path: Path, batch_size: int, precision: str, threads: int | None = None) -> None:
        check_precision("onnxruntime", precision)
        super().__init__(batch_size, precision, path)
        ort = require_package("onnxruntime", "--runtime onnxruntime")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = max(1, int(threads))
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ExportError(f"{path}: ONNX Runtime could not load it ({error})") from error
        self.input_names = [i.name for i in self.session.get_inputs()]

    def _run(self, arrays: list[Any]) -> list[Any]:
        return self.session.run(None, dict(zip(self.input_names, arrays)))


def compiled_folder() -> Path:
    """``<weights cache>/compiled``: exported networks the runtimes load (safe to delete)."""
    from medswin.weights.cache import weights_home

    return weights_home() / "compiled"


def _cache_key(network: Any, card: ModelCard, runtime: str, batch_size: int) -> dict[str, Any]:
    spec = _spec(runtime)
    inputs, _ = network_io(card, batch_size)
    key: dict[str, Any] = {
        "model": card.id,
        "weights_sha256": weights_sha256(network),
        "format": spec.export_format,
        "revision": EXPORT_REVISION,
        "inputs": {name: list(shape) for name, shape in inputs.items()},
        "torch": runtime_version("torch"),
        runtime: runtime_version(spec.package),
        **{package: runtime_version(package) for package in spec.key_packages},
    }
    if spec.export_format == "onnx":
        key["opset"] = ONNX_OPSET
    return key


def export_entry(network: Any, card: ModelCard, runtime: str, batch_size: int) -> tuple[Path, Path, dict]:
    """``(cache folder, network file, key)`` where ``runtime``'s export of ``network`` lives (or will)."""
    key = _cache_key(network, card, runtime, batch_size)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    entry = compiled_folder() / f"{card.id}-{digest}"
    main = entry / ("network.xml" if _spec(runtime).export_format == "openvino" else "network.onnx")
    return entry, main, key


def cached_export(network: Any, card: ModelCard, runtime: str, batch_size: int) -> tuple[Path, float]:
    """``(network file, export seconds)`` for ``runtime``: from the cache, or exported into it (0 s when cached).

    The export is made in a staging folder and renamed into place whole; when two processes export at
    once the first rename wins and the other's copy is dropped.
    """
    entry, main, key = export_entry(network, card, runtime, batch_size)
    if main.is_file() and (entry / "key.json").is_file():
        log.debug("%s: cached %s network %s", card.id, runtime, main)
        return main, 0.0
    start = time.perf_counter()
    with staging_folder(entry) as staging:
        export_network(
            network, card, _spec(runtime).export_format, staging, stem="network", batch_size=batch_size
        )
        (staging / "key.json").write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
        with contextlib.suppress(OSError):
            os.rename(staging, entry)  # a folder that appeared meanwhile (another process) is kept
    if not main.is_file():
        raise ExportError(f"{entry}: the exported network could not be put into the cache")
    return main, time.perf_counter() - start


def runner_class(runtime: str) -> type[Runner]:
    """The runner class the registry names for ``runtime`` (imported now)."""
    module, _, name = _spec(runtime).runner.partition(":")
    return getattr(importlib.import_module(module), name)
