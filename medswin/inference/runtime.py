"""Process-wide CPU settings that decide how fast a Swin UNETR runs on a CPU.

Measured on this project's 2-core AVX-512/AMX machines (``benchmarks/bench_predict.py``): one
96³ window of a feature-size-12 SwinUNETR took 4.1 s with 2.9 s of it *system* time. glibc's
malloc serves every block above its mmap threshold (128 KiB, raised dynamically to at most 32 MiB)
with a fresh ``mmap`` and returns it with ``munmap`` when freed, so each of the network's large
activations is page-faulted in (zeroed by the kernel) again on every window. Keeping freed memory
in the process removes that: ``mallopt(M_MMAP_THRESHOLD, 1 GiB)`` and ``mallopt(M_TRIM_THRESHOLD,
2 GiB)`` brought system time to ~0.

The same effect without code, for any process (e.g. a training run)::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=2147483647 medswin predict ...

or preloading jemalloc/tcmalloc. The cost is that memory freed after a peak stays mapped to the
process (its RSS does not shrink), which suits a process that runs inference.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTO",
    "PRECISIONS",
    "PRECISION_CHOICES",
    "resolve_device",
    "resolve_precision",
    "RUNTIMES",
    "RuntimeSpec",
    "RUNTIME_REGISTRY",
    "register_runtime",
    "runtime_choices",
    "RUNTIME_ENV",
    "default_runtime",
    "EXPORT_FORMATS",
    "available_devices",
    "MMAP_THRESHOLD_BYTES",
    "TRIM_THRESHOLD_BYTES",
    "configure_cpu_runtime",
    "allocator_tuned",
    "cpu_info",
    "cpu_has_native_bf16",
    "autocast",
]

log = logging.getLogger(__name__)

#: network precisions a Predictor runs; torch-free so parsers can list them.
PRECISIONS = ("fp32", "bf16", "fp16")
#: ``--device``/``--precision`` value that lets medswin choose from the machine (the default).
AUTO = "auto"
#: what ``--precision`` accepts.
PRECISION_CHOICES = (AUTO, *PRECISIONS)


@dataclass(frozen=True)
class RuntimeSpec:
    """What medswin needs to know of a runtime to offer it, choose it, export for it and build it.

    Torch-free (the runner class is imported only when a runner is built), so parsers list the
    registry without importing torch.
    """

    name: str
    #: torch device types it runs on.
    devices: tuple[str, ...]
    #: network precisions it can run.
    precisions: tuple[str, ...]
    #: ``"module:Class"`` of its window runner (:mod:`medswin.inference.backends`).
    runner: str
    #: the Python package that must be installed (its version enters the export cache key).
    package: str
    #: what :func:`medswin.inference.export.export_network` writes for it; None: runs the torch module.
    export_format: str | None = None
    #: further package versions that change the exported file (part of the cache key).
    key_packages: tuple[str, ...] = ()
    #: measured against torch by ``--runtime auto`` on CPUs (:mod:`medswin.inference.auto_runtime`).
    auto_candidate: bool = False


#: name -> spec of every runtime; :func:`register_runtime` adds one.
RUNTIME_REGISTRY: dict[str, RuntimeSpec] = {}


def register_runtime(spec: RuntimeSpec) -> RuntimeSpec:
    """Add ``spec`` to :data:`RUNTIME_REGISTRY` (a new runtime: its runner class plus this call)."""
    if spec.name == AUTO or spec.name in RUNTIME_REGISTRY:
        raise ValueError(f"runtime {spec.name!r} is already registered")
    RUNTIME_REGISTRY[spec.name] = spec
    return spec


register_runtime(
    RuntimeSpec(
        "torch", ("cpu", "cuda", "mps"), PRECISIONS, "medswin.inference.backends:TorchRunner", "torch"
    )
)
register_runtime(
    RuntimeSpec(
        "openvino",
        ("cpu",),
        PRECISIONS,
        "medswin.inference.backends:OpenVINORunner",
        "openvino",
        export_format="openvino",
        auto_candidate=True,
    )
)
register_runtime(
    RuntimeSpec(
        "onnxruntime",
        ("cpu",),
        ("fp32",),
        "medswin.inference.backends:OnnxRuntimeRunner",
        "onnxruntime",
        export_format="onnx",
        key_packages=("onnxscript",),
    )
)


def runtime_choices() -> tuple[str, ...]:
    """What ``--runtime`` accepts: every registered runtime, then ``auto`` (the default)."""
    return (*RUNTIME_REGISTRY, AUTO)


#: environment variable that replaces ``auto`` as the default runtime (e.g. a site pinning ``torch``).
RUNTIME_ENV = "MEDSWIN_RUNTIME"


def default_runtime() -> tuple[str, str]:
    """``(runtime, why)``: ``$MEDSWIN_RUNTIME`` when set (checked), else ``auto``."""
    chosen = os.environ.get(RUNTIME_ENV, "").strip()
    if not chosen:
        return AUTO, "asked for"
    if chosen not in runtime_choices():
        from medswin.errors import MedSwinError

        raise MedSwinError(
            f"{RUNTIME_ENV}={chosen!r} is not a runtime; set it to one of {', '.join(runtime_choices())} or unset it"
        )
    return chosen, f"{RUNTIME_ENV}={chosen}"


#: what runs the network on each window (``--runtime``) when this module was imported; torch-free.
#: ``auto`` (the default): torch on GPUs; on CPUs the runtime measured fastest on this machine
#: (:mod:`medswin.inference.auto_runtime`).
RUNTIMES = runtime_choices()

#: what ``medswin export`` writes (``--format``).
EXPORT_FORMATS = ("onnx", "openvino", "torchscript")

#: blocks below this come from the heap and are reused instead of mmap/munmap per allocation.
MMAP_THRESHOLD_BYTES = 1 << 30
#: free memory at the top of the heap above this goes back to the kernel; high so the heap is kept
#: between windows (mallopt takes an int, so 2 GiB is the most it accepts).
TRIM_THRESHOLD_BYTES = 2**31 - 1

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3

_tuned: bool | None = None


def _tune_glibc_malloc() -> bool:
    """``mallopt`` the thresholds above; False where the C library is not glibc or refuses."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only (musl has no mallopt thresholds)
    except (OSError, AttributeError):
        return False
    gnu_get_libc_version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    log.debug("glibc %s malloc thresholds %s", gnu_get_libc_version().decode(), "set" if ok else "refused")
    return ok


def configure_cpu_runtime(*, tune_allocator: bool = True, threads: int | None = None) -> bool:
    """Apply the CPU settings once per process; returns whether the allocator is tuned.

    Args:
        tune_allocator: raise glibc's mmap/trim thresholds (see the module docstring); idempotent.
        threads: torch intra-op threads; ``None`` keeps torch's choice (one per physical core).
    """
    global _tuned
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    if tune_allocator and _tuned is None:
        _tuned = _tune_glibc_malloc()
    return bool(_tuned)


def allocator_tuned() -> bool:
    """Whether :func:`configure_cpu_runtime` has tuned the allocator in this process."""
    return bool(_tuned)


def cpu_info(field: str) -> str:
    """The value of ``field`` (``"flags"``, ``"model name"``) of the first CPU in ``/proc/cpuinfo``;
    ``""`` where there is none (not Linux, or the field is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as stream:
            for line in stream:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX), where bf16 autocast pays off.

    Without them bf16 is emulated: a feature-size-12 SwinUNETR training step (2 x 64x64x32) took
    8x longer under bf16 autocast than in fp32 on a 2-core AVX2 AMD EPYC, while AVX-512 BF16/AMX
    machines ran it about 1.6x faster.
    """
    flags = cpu_info("flags").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(precision: str, device_type: str) -> Any:
    """``torch.autocast`` for ``"bf16"`` / ``"fp16"``, a no-op context for ``"fp32"`` (one rule for training and prediction)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def available_devices() -> list[str]:
    """``cpu`` plus ``cuda``/``mps`` when this torch build and machine have them (imports torch)."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.insert(0, "mps")
    return devices


def resolve_device(device: str) -> tuple[str, str]:
    """``(device, why)``: ``auto`` is the first CUDA GPU when torch sees one, else the CPU."""
    if device != AUTO:
        return device, "asked for"
    import torch

    if torch.cuda.is_available():
        return "cuda", f"auto: torch sees a CUDA GPU ({torch.cuda.get_device_name(0)})"
    return "cpu", "auto: torch sees no CUDA GPU"


def resolve_precision(precision: str, device_type: str, runtime: str) -> tuple[str, str]:
    """``(precision, why)``; ``auto`` picks the fastest precision that keeps labels (near-ties aside).

    * CUDA: bf16 autocast where the GPU computes bf16 (Ampere and later), else fp16.
    * CPU with native bf16 (AVX-512 BF16 or AMX): bf16 (torch, OpenVINO); ONNX Runtime runs fp32 only.
    * Other CPUs: fp32. There bf16 is emulated and slower (a training step 8x slower on an AVX2
      EPYC; OpenVINO's bf16 hint 97.5% label agreement on the demo model).
    On the demo model torch bf16 labels equal fp32's on 99.84-99.995% of a phantom CT's voxels (near-ties
    at organ boundaries).
    """
    if precision != AUTO:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
        return precision, "asked for"
    if device_type == "cuda":
        import torch

        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU computes bf16"
        return "fp16", "auto: this GPU has no bf16; fp16 autocast"
    if runtime == "onnxruntime":
        return "fp32", "auto: ONNX Runtime runs fp32 only"
    if cpu_has_native_bf16():
        return "bf16", "auto: this CPU computes bf16 natively (AVX-512 BF16/AMX)"
    return "fp32", "auto: this CPU has no native bf16 (AVX-512 BF16/AMX), where bf16 is emulated and slower"
