"""Grand Challenge algorithm container I/O: one job, ``/input`` in, ``/output`` out.

The platform mounts each input image at ``/input/images/<socket slug>/<uuid>.mha`` (or ``.tif``)
and lists the job's sockets in ``/input/inputs.json``; it collects
``/output/images/<output slug>/<uuid>.mha`` and ``/output/results.json``. Image sockets become the
model's channels in ``inputs.json`` order (or the order of ``input_slugs``). The job exits
non-zero on any failure, so the platform marks it failed instead of collecting an empty output.

The case runs through :func:`medswin.batch.run_batch` (the same reading, prediction and atomic
writing as ``medswin predict``) in a staging folder under ``/output``; its label map is then
moved to the socket folder and its record becomes ``results.json``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from medswin.batch.cases import Case
from medswin.errors import MedSwinError
from medswin.io.formats import file_format

__all__ = ["image_sockets", "socket_image", "run_job"]


def image_sockets(input_root: Path) -> list[str]:
    """Slugs of the image sockets in ``inputs.json``, in its order (every ``images/*`` folder without one)."""
    manifest = input_root / "inputs.json"
    if not manifest.is_file():
        return sorted(p.name for p in (input_root / "images").glob("*") if p.is_dir())
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError as error:
        raise MedSwinError(f"{manifest}: not valid JSON ({error})") from error
    slugs = []
    for entry in entries if isinstance(entries, list) else []:
        interface = entry.get("interface", {}) if isinstance(entry, dict) else {}
        relative = str(interface.get("relative_path", ""))
        if str(interface.get("kind", "")).lower().endswith("image") or relative.startswith("images/"):
            slugs.append(
                relative.split("/", 1)[1] if relative.startswith("images/") else str(interface["slug"])
            )
    if not slugs:
        raise MedSwinError(f"{manifest}: lists no image socket")
    return slugs


def socket_image(input_root: Path, slug: str) -> Path:
    """The one image file of a socket folder (Grand Challenge delivers .mha or .tif; any readable image counts)."""
    folder = input_root / "images" / slug
    files = [
        p
        for p in sorted(folder.glob("*"))
        if p.is_file() and not p.name.startswith(".") and file_format(p) is not None
    ]
    if len(files) != 1:
        raise MedSwinError(
            f"{folder}: expected exactly one image file (.mha, .tif, .nii.gz ...), found {len(files)}"
        )
    return files[0]


def run_job(
    predictor: Any,
    input_root: str | Path = "/input",
    output_root: str | Path = "/output",
    *,
    output_slug: str = "segmentation",
    input_slugs: list[str] | None = None,
) -> Path:
    """Segment the job's image(s) and write the output socket and ``results.json``; returns the label file.

    Raises:
        MedSwinError: missing or ambiguous inputs, a channel count the model does not take, or a
            failed prediction (with the batch's reason).
    """
    from medswin.batch import BatchOptions, run_batch
    from medswin.files import write_atomic

    input_root, output_root = Path(input_root), Path(output_root)
    slugs = input_slugs or image_sockets(input_root)
    channels = predictor.card.channels
    if len(slugs) != len(channels):
        raise MedSwinError(
            f"{input_root}: {len(slugs)} image socket(s) ({', '.join(slugs)}) for model {predictor.card.id!r}, "
            f"which takes {len(channels)} ({', '.join(channels)}); choose them with --input-slugs"
        )
    job = str(uuid.uuid4())
    case = Case(job, tuple(socket_image(input_root, slug) for slug in slugs))
    staging = output_root / f".medswin-{job}"
    try:
        result = run_batch(predictor, [case], staging, BatchOptions(formats=("mha",)))
        [outcome] = result.outcomes
        if outcome.status != "done":
            raise MedSwinError(f"{case.source}: {outcome.reason}")
        target = output_root / "images" / output_slug / f"{job}.mha"
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / f"{job}.mha").replace(target)
        record = outcome.record
        results = {
            "model": record["model"],
            "medswin": record["medswin"],
            "inputs": dict(zip(slugs, (p.name for p in case.paths), strict=True)),
            "output": f"images/{output_slug}/{job}.mha",
            "volumes_ml": {name: facts["volume_ml"] for name, facts in record["labels"].items()},
            "timings_s": record["timings_s"],
        }
        write_atomic(output_root / "results.json", json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
