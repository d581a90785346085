"""A torch network as a deployable file: ONNX, OpenVINO IR or TorchScript, for fixed window shapes.

Used twice: by ``medswin export`` (files plus the card for another program) and by the prediction
runtimes of :mod:`medswin.inference.backends`, which cache what they export here.

Shapes are static: a window network always sees ``sw_batch_size`` windows of the card's
``roi_size``, and OpenVINO compiles a static shape best (MONAI's SwinUNETR does not export with a
dynamic batch through the TorchScript ONNX exporter: "instance_norm for unknown channel size"). ONNX
goes through torch's dynamo exporter (``onnxscript``), OpenVINO IR through ``openvino.convert_model``
straight from the module, with fp32 weights (``compress_to_fp16=False``).

Every file is written to a staging folder beside the target, then moved into place, so a crash or a
second process never leaves half a network where a runtime would load it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medswin.errors import ExportError, MedSwinError
from medswin.files import staging_folder, write_atomic
from medswin.models.card import ModelCard

__all__ = [
    "ONNX_OPSET",
    "EXPORT_REVISION",
    "EXTRAS",
    "ExportedNetwork",
    "network_io",
    "weights_sha256",
    "runtime_version",
    "require_package",
    "export_network",
    "planned_files",
    "write_export",
]

log = logging.getLogger(__name__)

#: ONNX opset of exported networks (torch's dynamo exporter; ONNX Runtime and OpenVINO read it).
ONNX_OPSET = 18

#: python package -> the pip extra of medswin that installs it.
EXTRAS = {"onnxruntime": "onnxruntime", "openvino": "openvino", "onnx": "onnx", "onnxscript": "onnx"}

#: bumped when the same inputs would export a different file (part of the runtimes' cache key).
EXPORT_REVISION = 2

#: largest constant (elements) folded into an ONNX graph: enough for the masks' slice assignments.
_FOLD_LIMIT = 1 << 22

#: file name endings of each format, main file first.
_SUFFIXES = {"onnx": (".onnx", ".onnx.data"), "openvino": (".xml", ".bin"), "torchscript": (".pt",)}


@dataclass
class ExportedNetwork:
    """Files of one exported network.

    Attributes:
        path: the file a runtime loads (``.onnx``, ``.xml`` or ``.pt``); companions lie beside it.
        format: ``"onnx"``, ``"openvino"`` or ``"torchscript"``.
        inputs / outputs: ``name -> shape`` (``(B, C, *roi)``) of the network's tensors.
        seconds: time the export took (0 when it came from a cache).
        details: versions and options that made the file (recorded in its card).
    """

    path: Path
    format: str
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def require_package(name: str, purpose: str) -> Any:
    """Import optional package ``name`` or raise an error saying which medswin extra installs it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        extra = EXTRAS.get(name, name)
        raise MedSwinError(
            f"{purpose} needs the Python package {name!r}, which is not installed ({error}); "
            f"install it with: pip install 'medswin[{extra}]'"
        ) from None


def runtime_version(name: str) -> str:
    """Version of an installed package (``"torch"``, ``"openvino"``, ``"onnxruntime"`` ...), else ``""``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def network_io(
    card: ModelCard, batch_size: int = 1
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """``(inputs, outputs)``: name -> shape of the network's tensors for ``batch_size`` windows.

    The model's family says (:attr:`medswin.tasks.TaskKind.network_io`): a volume model takes ``image``
    ``(B, C, *roi)`` and gives ``logits`` ``(B, K, *roi)``; a Swin-X2S model takes the two views ``ap``
    ``(B, 1, X, Z)`` and ``lateral`` ``(B, 1, Y, Z)`` and gives the per-view volume logits ``logits_ap``
    and ``logits_lateral`` ``(B, K, X, Y, Z)``.
    """
    from medswin.tasks import task_for

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    return task_for(card).network_io(card, batch_size)


def weights_sha256(network: Any) -> str:
    """SHA-256 over the network's state (names, dtypes, shapes and bytes, in name order).

    Taken from the module rather than a file so that a network handed over in memory, a shipped
    checkpoint and a cached download are keyed alike.
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _examples(inputs: dict[str, tuple[int, ...]]) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(shape, generator=generator) for shape in inputs.values())


def _export_onnx(
    network: Any, examples: tuple[Any, ...], target: Path, names: tuple[list, list], opset: int
) -> None:
    import torch

    require_package("onnx", "ONNX export")
    require_package("onnxscript", "ONNX export (torch's dynamo exporter)")
    # the exporter warns once per torchvision operator it cannot register; nothing here uses them
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    program = torch.onnx.export(
        network,
        examples,
        dynamo=True,
        opset_version=opset,
        input_names=names[0],
        output_names=names[1],
        verbose=False,
    )
    # Swin's shifted-window masks are built by slice assignment: ScatterND nodes on constants of
    # ~100k elements, above the optimizer's default folding limits. Left in, ONNX Runtime ran the
    # demo window 1.4x slower (fs48 96³: 3.5x slower than torch); folded, the outputs are identical.
    from onnxscript import optimizer

    optimizer.optimize(program.model, input_size_limit=_FOLD_LIMIT, output_size_limit=_FOLD_LIMIT)
    program.save(str(target))


def _export_openvino(network: Any, examples: tuple[Any, ...], target: Path) -> None:
    ov = require_package("openvino", "OpenVINO export")
    model = ov.convert_model(
        network,
        example_input=examples if len(examples) > 1 else examples[0],
        input=[tuple(e.shape) for e in examples],
    )
    ov.save_model(model, str(target), compress_to_fp16=False)


def _export_torchscript(network: Any, examples: tuple[Any, ...], target: Path) -> None:
    import torch

    traced = torch.jit.trace(network, examples, check_trace=False, strict=False)
    torch.jit.save(traced, str(target))


def export_network(
    network: Any,
    card: ModelCard,
    fmt: str,
    folder: str | Path,
    *,
    stem: str | None = None,
    batch_size: int = 1,
    opset: int = ONNX_OPSET,
) -> ExportedNetwork:
    """Export ``network`` (on CPU, eval mode) for ``batch_size`` windows of ``card``'s roi into ``folder``.

    Args:
        network: the torch module; it is moved to CPU for the export (runtimes here run on CPU).
        card: its model card (roi, channels, classes; two views for Swin-X2S).
        fmt: ``"onnx"``, ``"openvino"`` or ``"torchscript"``.
        folder: where ``<stem>.onnx`` / ``<stem>.xml`` + ``.bin`` / ``<stem>.pt`` go (created).
        stem: file name without ending; default the card id.
        batch_size: windows per call (the runtimes pad a last, smaller batch).
        opset: ONNX opset (``onnx`` only).

    Raises:
        ExportError: the exporter failed (the message names the model and format).
        MedSwinError: the format's package is not installed (names the extra to install).
    """
    import torch

    if fmt not in _SUFFIXES:
        raise ValueError(f"format must be one of {', '.join(_SUFFIXES)}, got {fmt!r}")
    folder = Path(folder)
    stem = stem or card.id
    inputs, outputs = network_io(card, batch_size)
    names = (list(inputs), list(outputs))
    network = network.to("cpu").eval()
    examples = _examples(inputs)
    details: dict[str, Any] = {"torch": runtime_version("torch")}
    if fmt == "onnx":
        details.update(opset=opset, onnx=runtime_version("onnx"), onnxscript=runtime_version("onnxscript"))
    elif fmt == "openvino":
        details["openvino"] = runtime_version("openvino")
    start = time.perf_counter()
    with staging_folder(folder / f"{stem}{_SUFFIXES[fmt][0]}") as staging:
        target = staging / f"{stem}{_SUFFIXES[fmt][0]}"
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                # tracing warns of shape checks it freezes; shapes are fixed here on purpose
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch.export's own deprecation
                if fmt == "onnx":
                    _export_onnx(network, examples, target, names, opset)
                elif fmt == "openvino":
                    _export_openvino(network, examples, target)
                else:
                    _export_torchscript(network, examples, target)
        except MedSwinError:
            raise
        except Exception as error:
            raise ExportError(
                f"model {card.id!r}: {fmt} export failed ({type(error).__name__}: {error})"
            ) from error
        produced = sorted(staging.iterdir(), key=lambda p: p.name == target.name)  # main file last
        for item in produced:
            os.replace(item, folder / item.name)
    seconds = time.perf_counter() - start
    log.info("exported %s as %s in %.1f s: %s", card.id, fmt, seconds, folder / target.name)
    return ExportedNetwork(folder / target.name, fmt, inputs, outputs, seconds, details)


def planned_files(card: ModelCard, fmt: str, folder: str | Path) -> list[Path]:
    """Files :func:`write_export` makes in ``folder`` (the ONNX external-data file only for networks > 2 GB)."""
    folder = Path(folder)
    return [folder / f"{card.id}{suffix}" for suffix in _SUFFIXES[fmt]] + [folder / f"{card.id}.card.json"]


def write_export(
    network: Any,
    card: ModelCard,
    fmt: str,
    folder: str | Path,
    *,
    batch_size: int = 1,
    opset: int = ONNX_OPSET,
) -> tuple[ExportedNetwork, Path]:
    """:func:`export_network` plus ``<id>.card.json`` beside it: the model card with an ``export``
    block (file, format, tensor names and shapes, versions, weights SHA-256) so another program can
    preprocess, run and label without medswin."""
    exported = export_network(network, card, fmt, folder, batch_size=batch_size, opset=opset)
    document = card.to_dict()
    document["export"] = {
        "file": exported.path.name,
        "format": fmt,
        "inputs": {name: list(shape) for name, shape in exported.inputs.items()},
        "outputs": {name: list(shape) for name, shape in exported.outputs.items()},
        "weights_sha256": weights_sha256(network),
        "seconds": round(exported.seconds, 2),
        **exported.details,
    }
    card_path = Path(folder) / f"{card.id}.card.json"
    write_atomic(card_path, json.dumps(document, indent=2) + "\n")
    return exported, card_path
