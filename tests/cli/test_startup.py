"""The CLI starts without the numerical stack: ``--help`` and ``evaluate`` never import torch.

Run in fresh interpreters, since this test session has torch loaded already. (Speed itself is
measured by ``benchmarks/bench_startup.py``, not asserted here.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HEAVY = ("torch", "monai", "SimpleITK", "highdicom", "rich", "pynetdicom", "dicomweb_client", "requests")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_building_the_parser_imports_no_heavy_package() -> None:
    loaded = _modules_after("from medswin.cli.main import build_parser\nbuild_parser().format_help()")
    assert not loaded & {*HEAVY, "scipy"}, loaded & {*HEAVY, "scipy"}
    assert "medswin" in loaded


def test_the_command_table_is_what_the_modules_register() -> None:
    from medswin.cli.main import COMMANDS, build_parser

    registered = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert list(registered) == list(COMMANDS)
    for command, module in COMMANDS.items():  # each command alone builds from its own module
        alone = next(a for a in build_parser(command)._actions if a.dest == "command").choices
        assert command in alone and set(alone) == {c for c, m in COMMANDS.items() if m == module}


def test_a_named_command_builds_only_its_own_parser() -> None:
    probe = (
        "from medswin.cli.main import main\n"
        "try:\n    main(['-q', 'info', '--help'])\nexcept SystemExit:\n    pass\n"
        "import sys\nprint(' '.join(sorted(m for m in sys.modules if m.startswith('medswin.cli.'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "medswin.cli.info medswin.cli.main", done.stdout
    assert "numpy" not in _modules_after(
        "from medswin.cli.main import build_parser\nbuild_parser().format_help()"
    )


def test_package_api_is_lazy_but_complete() -> None:
    import medswin
    import medswin.inference

    assert not _modules_after(
        "import medswin, medswin.io, medswin.metrics, medswin.inference, medswin.models"
    ) & {
        "torch",
        "scipy",
    }
    for name in medswin.__all__:
        assert getattr(medswin, name) is not None, name
    assert medswin.inference.Predictor.__name__ == "Predictor"


def test_evaluate_runs_without_torch(tmp_path: Path) -> None:
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[3:8, 2:7, 2:6] = 1
    for name in ("pred.nii.gz", "ref.nii.gz"):
        nib.save(nib.Nifti1Image(labels, np.diag([0.8, 0.8, 2.5, 1.0])), str(tmp_path / name))
    out = tmp_path / "m.csv"
    loaded = _modules_after(
        "from medswin.cli.main import main\n"
        f"assert main(['evaluate', '--pred', {str(tmp_path / 'pred.nii.gz')!r}, '--gt', "
        f"{str(tmp_path / 'ref.nii.gz')!r}, '-o', {str(out)!r}, '-q']) == 0"
    )
    assert out.is_file()
    assert "torch" not in loaded and "monai" not in loaded
