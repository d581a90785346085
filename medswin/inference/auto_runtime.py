"""``--runtime auto`` on a CPU: torch until a measurement on *this* machine says another runtime is faster.

Why measure: the faster CPU runtime depends on the CPU and its load. For the BTCV fs48 network on 2
vCPUs OpenVINO ran end to end in 0.71x torch's time on an AVX2 EPYC and 0.63-0.66x on an AVX-512 Xeon,
ONNX Runtime slower than torch on both, yet one noisy per-window run ranked ONNX Runtime first.
Why not switch always: the first use exports the network (fs48: 58 s plus 19 s compiling on 2 vCPUs;
the demo network 15 s), which a small case never earns back.

The rule, per case (the predictor calls :meth:`AutoRunner.plan` with the case's network calls):

1. A calibration measured on this machine for this export (``calibration.json`` beside the exported
   network, keyed by CPU model, torch threads and precision) decides at once: the faster one runs
   every call. So later cases, and later processes, run at the faster runtime's speed.
2. Otherwise the case's first call runs in torch and is timed (``t``). When the remaining calls, plus
   what earlier cases of this process ran in torch (*forgone*), would save more than the export
   costs, ``(forgone + (calls - 1) * t) * PRIOR_SAVING > EXPORT_FIXED_SECONDS + EXPORT_WINDOWS * t``,
   the network is exported and compiled, the *same* first call runs again in the candidate and
   is timed, both times become the calibration, and the faster one runs the case.
   A case never mixes runtimes: when the candidate wins, the first call's torch output is dropped.
3. Otherwise the case runs in torch, its torch seconds join *forgone*, and the next case decides again.

Step 2 is the rent-or-buy rule: a first case is exported only if it alone repays the export, so it
is not slower than torch; a batch of small cases exports once the time it could have saved reaches
the export's cost, so the whole run takes at most about twice what the best choice in hindsight would.

The constants come from the measurements above: ``PRIOR_SAVING`` is the smallest saving measured
(AVX2, 0.71x), and ``10 s + 10 windows`` bounds both exports (fs48: 77 s for 6.8 s windows; demo:
15 s for 1.3 s first windows). When the estimate holds, the first case is not slower than torch.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from medswin.inference.backends import Runner, RunnerSettings, TorchRunner, export_entry, runner_class
from medswin.inference.runtime import RUNTIME_REGISTRY, cpu_info
from medswin.models.card import ModelCard

__all__ = [
    "AutoRunner",
    "PRIOR_SAVING",
    "EXPORT_FIXED_SECONDS",
    "EXPORT_WINDOWS",
    "machine_fingerprint",
    "read_calibration",
]

log = logging.getLogger(__name__)

#: share of torch's time a candidate is assumed to save before it is measured (AVX2 EPYC, fs48: 0.71x).
PRIOR_SAVING = 0.29
#: export + compile cost estimate, ``EXPORT_FIXED_SECONDS + EXPORT_WINDOWS x`` one torch call.
EXPORT_FIXED_SECONDS = 10.0
EXPORT_WINDOWS = 10.0
CALIBRATION_FILE = "calibration.json"


def machine_fingerprint(precision: str) -> str:
    """What a calibration holds for: the CPU model, torch's threads and the precision."""
    import torch

    model = cpu_info("model name") or "unknown CPU"
    return f"{model} | {torch.get_num_threads()} threads | {precision}"


def read_calibration(entry: Path, fingerprint: str) -> dict[str, float] | None:
    """Seconds per call by runtime measured on this machine for the export in ``entry``, or None."""
    try:
        document = json.loads((entry / CALIBRATION_FILE).read_text(encoding="utf-8"))
        seconds = document[fingerprint]["seconds_per_call"]
        return {str(name): float(value) for name, value in seconds.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_calibration(entry: Path, fingerprint: str, seconds: dict[str, float]) -> None:
    """Add this machine's times to ``entry``'s calibration (atomically; other machines' entries kept)."""
    from medswin.files import write_atomic

    path = entry / CALIBRATION_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            document = {}
    except (OSError, ValueError):
        document = {}
    document[fingerprint] = {
        "seconds_per_call": {name: round(value, 4) for name, value in seconds.items()},
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        write_atomic(path, json.dumps(document, indent=2) + "\n")
    except OSError as error:  # a read-only cache: the choice stands, the next process measures again
        log.warning("could not store the runtime calibration in %s (%s)", path, error)


class AutoRunner(Runner):
    """Torch, or the auto candidate (OpenVINO) where it was measured faster on this machine (module docs)."""

    name = "auto"

    def __init__(self, network: Any, card: ModelCard, settings: RunnerSettings, candidate: str) -> None:
        super().__init__(settings.precision)
        self.network = network
        self.card = card
        self.settings = settings
        self.candidate = candidate
        self.torch = TorchRunner(network, settings.precision, settings.device_type)
        self.entry, self.network_file, _ = export_entry(network, card, candidate, settings.batch_size)
        self.fingerprint = machine_fingerprint(settings.precision)
        self.active: Runner | None = None  # decided for good
        self.why = f"auto: torch until {candidate} is measured on this machine"
        self.calls = 0  # of the case being planned
        self.pending = False  # the next call decides
        self.torch_seconds: float | None = None
        self.forgone = 0.0  # torch seconds of earlier cases of this process that the candidate might have cut
        calibration = read_calibration(self.entry, self.fingerprint) if self.network_file.is_file() else None
        if calibration and {"torch", candidate} <= set(calibration):
            self._adopt(calibration, "calibrated earlier on this machine")

    @classmethod
    def create(cls, network: Any, card: ModelCard, settings: RunnerSettings) -> AutoRunner:
        candidate = next(
            name
            for name, spec in RUNTIME_REGISTRY.items()
            if spec.auto_candidate
            and settings.device_type in spec.devices
            and settings.precision in spec.precisions
        )
        return cls(network, card, settings, candidate)

    # ------------------------------------------------------------------ deciding
    def _build_candidate(self) -> Runner | None:
        """The candidate's runner (exported and compiled), or None when that fails: auto then stays on
        torch with the reason, because a runtime that cannot run this network must not cost the case."""
        try:
            runner = runner_class(self.candidate).create(self.network, self.card, self.settings)
        except Exception as error:  # noqa: BLE001 - export/compile failures of any kind fall back to torch
            self._give_up(error)
            return None
        self.timings.update(runner.pop_timings())
        return runner

    def _give_up(self, error: Exception) -> None:
        log.warning(
            "auto runtime: %s could not run %s (%s); using torch", self.candidate, self.card.id, error
        )
        self.active = self.torch
        self.why = (
            f"auto: torch; {self.candidate} could not run this network ({type(error).__name__}: {error})"
        )

    def _adopt(self, seconds: dict[str, float], how: str, built: Runner | None = None) -> None:
        """Settle on the faster of torch and the candidate by ``seconds`` per call."""
        faster = min(("torch", self.candidate), key=lambda name: seconds[name])
        self.why = (
            f"auto: {faster} measured faster on this machine ({self.candidate} "
            f"{seconds[self.candidate]:.3g} s vs torch {seconds['torch']:.3g} s per network call; {how})"
        )
        if faster == "torch":
            self.active = self.torch
            return
        runner = built or self._build_candidate()
        if runner is not None:
            self.active = runner

    def plan(self, calls: int) -> None:
        self.calls = int(calls)
        self.pending = self.active is None
        self.why = self.why.replace("; measured now)", "; measured on an earlier case of this run)")

    def __call__(self, *inputs: Any) -> Any:
        if self.active is not None:
            return self.active(*inputs)
        if not self.pending:
            return self.torch(*inputs)
        self.pending = False
        start = time.perf_counter()
        out = self.torch(*inputs)
        self.torch_seconds = time.perf_counter() - start
        saving = (self.forgone + (self.calls - 1) * self.torch_seconds) * PRIOR_SAVING
        cost = EXPORT_FIXED_SECONDS + EXPORT_WINDOWS * self.torch_seconds
        if saving <= cost:
            self.why = (
                f"auto: torch; this case's {self.calls} network calls (and earlier cases') would save about "
                f"{saving:.0f} s in {self.candidate}, less than exporting to it costs (about {cost:.0f} s)"
            )
            self.forgone += self.calls * self.torch_seconds
            return out
        log.info(
            "auto runtime: exporting to %s (%d network calls of %.1f s in torch), then measuring it",
            self.candidate,
            self.calls,
            self.torch_seconds,
        )
        runner = self._build_candidate()
        if runner is None:
            return out
        start = time.perf_counter()
        try:
            candidate_out = runner(*inputs)
        except Exception as error:  # noqa: BLE001 - the candidate failing on a window must not cost the case
            self._give_up(error)
            return out
        seconds = {"torch": self.torch_seconds, self.candidate: time.perf_counter() - start}
        _write_calibration(self.entry, self.fingerprint, seconds)
        self._adopt(seconds, "measured now", built=runner)
        log.info("%s", self.why)
        return candidate_out if self.active is runner else out

    def describe(self) -> dict[str, Any]:
        """What ran the last case: torch or the candidate, with why (``choice``)."""
        ran = self.active or self.torch
        return {**ran.describe(), "choice": self.why}
