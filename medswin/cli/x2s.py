"""``medswin x2s``: biplanar X-ray to 3D segmentation (Swin-X2S).

* ``medswin x2s predict --ap AP --lateral LAT -m MODEL -o out.nii.gz``: a 3D label volume from an AP
  and a lateral radiograph (DICOM DX/CR, MHA, PNG ...), normalised like the training DRRs;
* ``medswin x2s drr -i CT_DATASET -o OUT``: DRR pairs plus labels on the model grid from CT cases
  with labels, the training data of ``medswin train`` for a Swin-X2S card;
* ``medswin x2s evaluate --pred DIR --gt DIR -m MODEL -o metrics.csv``: Dice (no background), HD95,
  ASSD and morphometry errors (mm, degrees) per anatomy, as the paper's tables report them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from medswin.errors import MedSwinError

__all__ = ["add_parser", "run_predict", "run_drr", "run_evaluate"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "x2s",
        help="biplanar X-rays -> 3D labels (Swin-X2S): predict, make DRR training data, evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="x2s_command", metavar="SUBCOMMAND", required=True)
    _add_predict(commands)
    _add_drr(commands)
    _add_evaluate(commands)


# ----------------------------------------------------------------------------- predict
def _add_predict(commands: Any) -> None:
    from medswin.cli.predict import add_execution_options

    parser = commands.add_parser(
        "predict",
        help="3D label volume from an AP and a lateral radiograph",
        description=(
            "Read an AP (frontal) and a lateral radiograph, turn them like the training DRRs (DICOM "
            "PatientOrientation, else the standard display: AP x to the patient's left, lateral x to "
            "posterior, y to the feet), min-max scale, pad square, resize and crop them as the model's "
            "card says, and write the label volume (axes LPI, physical voxel size, centred on the "
            "isocentre: radiographs carry no patient coordinates). A card trained in another handedness "
            "(radiographs.frame, e.g. RAI) gets the views mirrored and the output axes to match. A DICOM whose "
            "ViewPosition contradicts --ap/--lateral (LL/RL vs AP/PA) is reported. The output is written atomically."
        ),
    )
    parser.add_argument("--ap", type=Path, help="AP / PA radiograph (DICOM, MHA, NIfTI, PNG ...)")
    parser.add_argument("--lateral", type=Path, help="lateral radiograph")
    parser.add_argument(
        "--datalist",
        type=Path,
        help="instead of --ap/--lateral: predict every case of a biplanar datalist into the -o folder (a "
        "record per case, summary.csv, finished cases kept, as medswin predict)",
    )
    parser.add_argument(
        "--fold",
        type=int,
        help="with --datalist: only the validation cases of this fold (default: the test cases, else all)",
    )
    parser.add_argument(
        "-m", "--model", required=True, help="medswin Swin-X2S checkpoint or shipped name (demo-x2s)"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="label volume to write (.nii.gz, .mha, .nrrd); with --datalist, a folder",
    )
    parser.add_argument(
        "--probabilities", type=Path, metavar="FILE", help="also write the class probabilities (K channels)"
    )
    parser.add_argument(
        "--ap-orientation",
        metavar="X\\Y",
        help="the AP image's orientation when the file does not say (default L\\F: x to the patient's left, y to the feet)",
    )
    parser.add_argument(
        "--lateral-orientation", metavar="X\\Y", help="the lateral image's orientation (default P\\F)"
    )
    parser.add_argument(
        "--pixel-spacing",
        type=float,
        nargs="+",
        metavar="MM",
        help="detector pixel size in mm (one value for both views, or AP then lateral); needed for PNG/JPEG",
    )
    add_execution_options(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run_predict)


def _pixel_spacings(values: list[float] | None) -> tuple[float | None, float | None]:
    spacing = values or [None]
    if len(spacing) > 2 or any(s is not None and not s > 0 for s in spacing):
        raise MedSwinError(f"--pixel-spacing takes one or two positive sizes in mm, got {values}")
    return spacing[0], spacing[-1]


def run_predict(args: argparse.Namespace) -> int:
    from medswin.inference.x2s import X2SPredictor

    if args.datalist is None and (args.ap is None or args.lateral is None):
        raise MedSwinError(
            "give --ap AP and --lateral LAT (one pair), or --datalist FILE (every case of a datalist)"
        )
    if args.datalist is not None and (args.ap is not None or args.lateral is not None):
        raise MedSwinError("--datalist predicts the datalist's pairs; leave out --ap/--lateral")
    spacings = _pixel_spacings(args.pixel_spacing)
    if args.datalist is None:
        from medswin.io.writers import check_output_file

        for path in (args.output, *([args.probabilities] if args.probabilities else [])):
            check_output_file(path, overwrite=args.overwrite, inputs=(args.ap, args.lateral))
    predictor = X2SPredictor(
        args.model,
        device=args.device,
        precision=args.precision,
        save_probabilities=bool(args.probabilities),
        runtime=args.runtime,
        threads=args.threads,
    )
    options = {"orientations": (args.ap_orientation, args.lateral_orientation), "pixel_spacing": spacings}
    if args.datalist is not None:
        return _predict_datalist(predictor, args, options)
    result = predictor.predict(args.ap, args.lateral, **options)
    _write_prediction(result, args.output, args.probabilities)
    labels = result.labels
    shape = " × ".join(str(n) for n in labels.shape)
    voxel = " × ".join(f"{s:.3g}" for s in labels.spacing)
    print(
        f"wrote {args.output}: {shape} voxels of {voxel} mm, {labels.orientation} (model {predictor.card.id})"
    )
    for view, notes in result.notes.items():
        print(f"  {view}: {'; '.join(notes)}")
    millilitres = labels.voxel_volume_ml
    for value, name in predictor.card.label_names().items():
        print(f"  {value:>3} {name:<20} {int((labels.array == value).sum()) * millilitres:10.1f} mL")
    print(f"  quality: {result.quality.verdict}")
    for check in result.quality.flagged():
        print(f"    {check.verdict} {check.name}: {check.reason}")
    print(f"  {result.timings['total']:.2f} s")
    return 0


def _write_prediction(result: Any, output: Path, probabilities: Path | None) -> None:
    from medswin.io.writers import write_image, write_labels

    write_labels(result.labels, output)
    if probabilities is not None and result.probabilities is not None:
        write_image(result.probabilities, probabilities)


def _datalist_cases(path: Path, fold: int | None) -> list[Any]:
    """The validation cases of ``fold``, else the test cases, else every case of a datalist."""
    from medswin.data.manifest import load_datalist

    datalist = load_datalist(path)
    if fold is not None:
        return datalist.split(fold)[1]
    return datalist.test or [*datalist.training, *datalist.validation]


def _predict_datalist(predictor: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    """Every chosen case to ``OUT/<case>.nii.gz`` through the batch runner (records, resume, summary)."""
    from medswin.batch import BatchOptions, Case
    from medswin.batch.biplanar import BiplanarBatchPredictor, read_radiograph_pair
    from medswin.cli.predict import report_batch, run_with_progress, sigterm_as_exit

    cases = [Case(entry.case_id, tuple(entry.images)) for entry in _datalist_cases(args.datalist, args.fold)]
    batch = BiplanarBatchPredictor(predictor, **options)
    with sigterm_as_exit():
        result = run_with_progress(
            batch, cases, args.output, BatchOptions(overwrite=args.overwrite), reader=read_radiograph_pair
        )
    report_batch(result.outcomes, result.summary)
    return 1 if result.failed else 0


# --------------------------------------------------------------------------------- drr
def _add_drr(commands: Any) -> None:
    # Geometry defaults are None here (DrrGeometry's own apply), so building the parser imports no
    # numpy and -m can tell which settings the user asked for.
    parser = commands.add_parser(
        "drr",
        help="DRR pairs and model-grid labels from CT cases (Swin-X2S training data)",
        description=(
            "For each CT case with labels (a datalist JSON, or a dataset folder in nnU-Net / image+label "
            "pair layout): resample to an isotropic cube over the CT's longest extent, cast AP and "
            "lateral DRRs, resample the labels onto the model's output grid, and write OUT/imagesTr, "
            "OUT/labelsTr, OUT/dataset.json and OUT/datalist.json (with folds). The geometry is the "
            "official one unless -m takes it from a model card or the options change it. A case that "
            "fails is reported and the others are written."
        ),
    )
    parser.add_argument(
        "-i", "--input", required=True, type=Path, help="datalist JSON or dataset folder of CTs + labels"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output dataset folder")
    parser.add_argument(
        "-m", "--model", help="take the DRR geometry and output grid from this Swin-X2S card/model"
    )
    parser.add_argument("--cube-size", type=int, help="cube voxels per side (default 160)")
    parser.add_argument(
        "--volume-size", type=int, nargs=3, metavar=("X", "Y", "Z"), help="output grid (default 128 128 160)"
    )
    parser.add_argument(
        "--projection",
        choices=("cone", "parallel"),
        help="default cone; parallel needs --values full_precision",
    )
    parser.add_argument(
        "--source-to-isocentre", type=float, metavar="MM", help="cone beam (default 1800, the official)"
    )
    parser.add_argument(
        "--source-to-detector", type=float, metavar="MM", help="cone beam (default 2000, the official)"
    )
    parser.add_argument(
        "--intensity",
        choices=("hu_above_threshold", "attenuation"),
        help="default hu_above_threshold; attenuation needs --values full_precision",
    )
    parser.add_argument(
        "--oversample",
        type=int,
        help="rays per pixel per axis (default 2; --values full_precision only, the official program casts one)",
    )
    parser.add_argument(
        "--values",
        choices=("official", "full_precision"),
        help="official (default): the official DRR program emulated (its centre and detector, sums clamped to "
        "16-bit, 8-bit rescale), what the published weights saw; full_precision: medswin's own cube projection "
        "scaled by its true range",
    )
    parser.add_argument(
        "--frame",
        metavar="XYZ",
        help="handedness of the output axes (default LPI: X to the patient's left, Y posterior, Z to the feet; "
        "RAI for a model trained on RAS-stored files)",
    )
    parser.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds of the datalist (default 5)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into an OUT folder that already holds a dataset"
    )
    parser.set_defaults(run=run_drr)


def _ct_cases(source: Path) -> tuple[list[Any], dict[int, str] | None]:
    """CT cases with labels and the label names, from a datalist file or a dataset folder."""
    from medswin.data.builder import scan_folder
    from medswin.data.manifest import load_datalist, load_dataset_info

    if source.is_dir():
        _, training, _ = scan_folder(source)
        info = load_dataset_info(source / "dataset.json") if (source / "dataset.json").is_file() else None
    else:
        datalist = load_datalist(source, check_files=True)
        training, info = [*datalist.training, *datalist.validation], datalist.info
    cases = [entry for entry in training if entry.label is not None]
    if not cases:
        raise MedSwinError(f"{source}: no CT case with a label file")
    return cases, (dict(info.labels) if info is not None else None)


def run_drr(args: argparse.Namespace) -> int:
    from medswin.data.drr_dataset import write_drr_dataset
    from medswin.io.readers import read_image
    from medswin.training.data import read_case_images
    from medswin.transforms.drr import DrrGeometry

    if (args.output / "datalist.json").exists() and not args.overwrite:
        raise MedSwinError(f"{args.output}: already holds a DRR dataset; pass --overwrite to write into it")
    asked = {
        "cube_size": args.cube_size,
        "volume_size": tuple(args.volume_size) if args.volume_size else None,
        "projection": args.projection,
        "source_to_isocentre_mm": args.source_to_isocentre,
        "source_to_detector_mm": args.source_to_detector,
        "intensity": args.intensity,
        "oversample": args.oversample,
        "values": args.values,
        "frame": args.frame and args.frame.upper(),
    }
    asked = {name: value for name, value in asked.items() if value is not None}
    if args.model:
        from medswin.models.resolve import resolve_model
        from medswin.transforms.radiograph import drr_geometry

        _, card = resolve_model(args.model, load_weights=False)
        geometry = drr_geometry(card)
        clash = {name: value for name, value in asked.items() if value != getattr(geometry, name)}
        if clash:
            trained = ", ".join(f"{name} {getattr(geometry, name)!r}" for name in clash)
            raise MedSwinError(
                f"model {card.id!r} was trained on DRRs with {trained}; "
                f"{', '.join(f'{name} {value!r}' for name, value in clash.items())} would make data it "
                "never saw. Leave them out, or drop -m and give the geometry yourself"
            )
    else:
        geometry = DrrGeometry(**asked)  # checked by write_drr_dataset before anything is read or written
    cases, labels = _ct_cases(args.input)

    def loader(entry: Any) -> Any:
        return lambda: (read_case_images(entry), read_image(entry.label, kind="label"))

    result = write_drr_dataset(
        [(entry.case_id, loader(entry)) for entry in cases],
        args.output,
        labels,
        geometry=geometry,
        folds=args.folds,
        info={"source": str(args.input)},
    )
    print(
        f"wrote {len(result.written)} DRR case(s) to {args.output} (cube {geometry.cube_size}, grid "
        f"{list(geometry.volume_size)}, values {geometry.values}, frame {geometry.frame})"
    )
    for case, reason in result.failed.items():
        print(f"  failed {case}: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


# ---------------------------------------------------------------------------- evaluate
def _add_evaluate(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="Dice, HD95, ASSD and morphometry errors of predicted label volumes",
        description=(
            "Pair predicted and reference label volumes by case id and report, per anatomy (femur, pelvis, "
            "vertebra, rib), Dice without background, HD95 and ASSD in mm and the errors of the clinical "
            "parameters (mm, degrees). The official Swin-X2S Dice includes background and its morphometry "
            "is in voxels; both differences are stated in the summary."
        ),
    )
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted label volumes")
    parser.add_argument("--gt", required=True, type=Path, help="folder of reference label volumes")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("-m", "--model", help="model whose card names the labels")
    which.add_argument("--dataset", type=Path, help="dataset.json naming the labels")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="metrics CSV (summary JSON beside it)"
    )
    parser.add_argument(
        "--datalist",
        type=Path,
        help="score only this datalist's cases (with --fold: that fold's validation cases; else its test cases)",
    )
    parser.add_argument("--fold", type=int, help="with --datalist: the held-out fold")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from medswin.metrics.x2s import evaluate_x2s_folders, format_x2s_table

    if args.model:
        from medswin.models.resolve import resolve_model

        labels = dict(resolve_model(args.model, load_weights=False)[1].labels)
    else:
        from medswin.data.manifest import load_dataset_info

        labels = dict(load_dataset_info(args.dataset).labels)
    cases = None
    if args.datalist is not None:
        cases = [entry.case_id for entry in _datalist_cases(args.datalist, args.fold)]
    elif args.fold is not None:
        raise MedSwinError("--fold chooses cases of a --datalist; give the datalist too")
    summary = evaluate_x2s_folders(args.pred, args.gt, labels, args.output, cases=cases)
    print(format_x2s_table(summary))
    return 1 if summary["n_failed"] else 0
