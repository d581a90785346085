"""``medswin predict -i FILE -o OUT_DIR -m MODEL``: labels for one image, written on its own grid.

The per-case work (read, predict, write ``OUT_DIR/<case>.nii.gz`` atomically) lives in
:func:`predict_case` so batch front ends reuse it with one :class:`~medswin.inference.Predictor`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "case_name", "read_case", "predict_case", "INPUT_SUFFIXES"]

#: endings stripped from an input's name to make the case name, longest first.
INPUT_SUFFIXES: tuple[str, ...] = (
    ".nii.gz",
    ".nii",
    ".mha",
    ".mhd",
    ".nrrd",
    ".nhdr",
    ".dcm",
    ".zip",
    ".png",
    ".tiff",
    ".tif",
    ".jpg",
    ".jpeg",
)

DESCRIPTION = """\
Segment an image with a model and write the label map as OUT_DIR/<case>.nii.gz, where <case> is
the input's file name without its extension. The labels lie on the input's exact grid (shape,
spacing, origin and direction; a NIfTI input's header is reused). The output is written atomically;
an existing file is kept unless --overwrite is given.

MODEL is a medswin checkpoint (.safetensors, which carries its model card) or the name of a shipped
model. Multi-channel models (e.g. BraTS: t2f t1c t1n t2w) take one -i per channel, in the order of
the card's channels.

CPU speed: --precision bf16 is about twice as fast on CPUs with AVX-512 BF16/AMX. medswin keeps
freed memory in the process (glibc malloc thresholds) because returning it to the kernel after
every window dominated run time; set GLIBC_TUNABLES yourself to do the same for other tools.
"""


def add_parser(subparsers: Any) -> None:
    from medswin.inference.predictor import PRECISIONS

    parser = subparsers.add_parser(
        "predict",
        help="segment an image; labels written as OUT_DIR/<case>.nii.gz on the input's grid",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-i",
        "--input",
        required=True,
        action="append",
        metavar="FILE",
        help="image file, DICOM folder or zip; repeat for multi-channel models, in the card's channel order",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT_DIR", help="output folder")
    parser.add_argument(
        "-m", "--model", required=True, help="medswin checkpoint (.safetensors) or shipped model name"
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="network precision (default: fp32)"
    )
    parser.add_argument(
        "--overlap", type=float, default=None, help="sliding-window overlap in [0, 1) (default: the model's)"
    )
    parser.add_argument("--tta", action="store_true", help="mirror test-time augmentation (8x slower in 3D)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default: cpu)")
    parser.add_argument(
        "--sw-batch-size", type=int, default=1, metavar="N", help="windows per network call (default: 1)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    parser.add_argument(
        "--keep-largest",
        action="store_true",
        help="keep only the largest connected component of each label",
    )
    parser.add_argument("--case", help="output name instead of the input's file name")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(run=run)


def case_name(path: str | Path) -> str:
    """The case name of an input: its file (or folder) name without the image extension."""
    name = Path(path).name
    lowered = name.lower()
    for suffix in INPUT_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def read_case(paths: Sequence[str | Path]) -> Any:
    """Read one case: a single image, or one image per channel stacked in the given order.

    Channel images must lie on one grid; raises :class:`GeometryError` naming the odd one out.
    """
    import numpy as np

    from medswin.errors import GeometryError
    from medswin.io import read_image

    images = [read_image(p) for p in paths]
    if len(images) == 1:
        return images[0]
    first = images[0]
    for path, image in zip(paths[1:], images[1:]):
        difference = image.grid_difference(first)
        if difference is not None:
            raise GeometryError(
                f"{path}: not on the grid of {paths[0]} ({difference}); the channels of one case must share a grid"
            )
    arrays = [np.asarray(image.array, dtype=np.float32) for image in images]
    return first.with_array(np.concatenate(arrays, axis=0))


def predict_case(
    predictor: Any,
    inputs: Sequence[str | Path],
    output_dir: str | Path,
    *,
    case: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[Path, Any]:
    """Read ``inputs``, predict, write ``output_dir/<case>.nii.gz`` on the input grid; ``(path, Prediction)``.

    Refuses (``ImageWriteError``) to replace an existing output unless ``overwrite``; nothing is
    written when reading, predicting or writing fails, or when ``cancel`` stops the prediction.
    """
    from medswin.errors import ImageWriteError
    from medswin.io import write_labels

    output = Path(output_dir) / f"{case or case_name(inputs[0])}.nii.gz"
    if output.exists() and not overwrite:
        raise ImageWriteError(f"{output}: already exists; pass --overwrite to replace it")
    image = read_case(inputs)
    prediction = predictor.predict(image, progress=progress, cancel=cancel)
    write_labels(prediction.labels, output, reference=image)
    return output, prediction


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medswin.errors import MedSwinError
    from medswin.inference import Predictor
    from medswin.transforms import Postprocess

    if args.overlap is not None and not 0 <= args.overlap < 1:
        raise MedSwinError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.sw_batch_size < 1:
        raise MedSwinError(f"--sw-batch-size must be at least 1, got {args.sw_batch_size}")
    for path in args.input:
        if not Path(path).exists():
            raise MedSwinError(f"{path}: no such file or folder")
    predictor = Predictor(
        args.model,
        device=args.device,
        precision=args.precision,
        overlap=args.overlap,
        sw_batch_size=args.sw_batch_size,
        tta=args.tta,
        postprocess=Postprocess(keep_largest=True) if args.keep_largest else None,
        threads=args.threads,
    )
    quiet = bool(getattr(args, "quiet", False))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=quiet, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("predicting", total=None)

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message)

        output, prediction = predict_case(
            predictor, args.input, args.output, case=args.case, overwrite=args.overwrite, progress=progress
        )
    if not quiet:
        labels = prediction.labels
        present = [int(v) for v in np.unique(labels.array) if v != 0]
        names = ", ".join(prediction.card.labels.get(v, str(v)) for v in present) or "none"
        print(
            f"wrote {output} ({' x '.join(str(n) for n in labels.shape)} voxels; labels found: {names}; "
            f"{prediction.windows} windows in {prediction.timings['total']:.1f} s)",
            file=sys.stdout,
        )
    return 0
