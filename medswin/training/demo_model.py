"""``make demo-model``: train the shipped demo model with the real training pipeline.

1. write made-up CT phantoms (varied seeds, orientations and voxel sizes) to a temporary folder in
   nnU-Net layout (:func:`medswin.data.phantom_dataset.write_phantom_dataset`);
2. build its datalist with :func:`medswin.data.builder.build_manifest` (7 folds; fold 0 validates);
3. ``medswin train --pipeline pipelines/train/demo_phantom.yaml`` on it;
4. score the best checkpoint on fresh phantoms (new seeds, every orientation) with the Predictor
   and the metrics module, and refuse to ship it if any organ's Dice is at or below 0.9;
5. write ``medswin/models/weights/demo.safetensors``: float16 weights plus the card, whose
   provenance says how it was made (pipeline, seeds, epochs, validation and test Dice).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TRAIN_SEEDS",
    "TEST_SEEDS",
    "build_demo_model",
    "evaluate_on_phantoms",
    "scratch_folder",
    "train_demo",
    "ship_demo_model",
    "refresh_card",
    "main",
]

log = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_PIPELINE = REPOSITORY / "pipelines" / "train" / "demo_phantom.yaml"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "models" / "weights" / "demo.safetensors"
#: phantoms of the training datalist (fold 0 of 7 validates).
TRAIN_SEEDS = tuple(range(1000, 1028))
#: voxel sizes cycled through the training phantoms (same field of view, so anatomy keeps its size).
TRAIN_SPACINGS = ((3.0, 3.0, 4.0), (2.5, 2.5, 3.5), (3.5, 3.5, 4.5))
#: fresh phantoms the shipped model is scored on (never seen in training or validation).
TEST_SEEDS = (5000, 5001, 5002, 5003, 5004, 5005)
MIN_DICE = 0.9


def evaluate_on_phantoms(checkpoint: str | Path, seeds: tuple[int, ...] = TEST_SEEDS) -> dict[str, float]:
    """Mean Dice per organ of ``checkpoint`` on default-size phantoms, orientations cycled (LPS, RAS, oblique)."""
    from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
    from medswin.data.phantom_dataset import ORIENTATIONS
    from medswin.inference.predictor import Predictor
    from medswin.metrics import dice

    predictor = Predictor(str(checkpoint))
    scores: dict[str, list[float]] = {name: [] for name, _ in PHANTOM_LABELS.values()}
    for index, seed in enumerate(seeds):
        case = make_ct_phantom(orientation=ORIENTATIONS[index % 3], seed=seed)
        labels = predictor.predict(case.image).labels.array[0]
        truth = case.labels.array[0]
        for value, (name, _) in PHANTOM_LABELS.items():
            scores[name].append(dice(labels == value, truth == value))
    return {name: float(np.mean(values)) for name, values in scores.items()}


@contextlib.contextmanager
def scratch_folder(prefix: str, work: Path | None, resume: Path | None) -> Iterator[tuple[Path, bool]]:
    """``(folder, resuming)``: a fresh temporary folder (removed afterwards), or an interrupted run's folder.

    A killed build leaves its folder (``data/`` and ``run/``) under ``--work``; ``--resume FOLDER``
    continues its training from the last finished epoch instead of starting over.
    """
    if resume is not None:
        from medswin.errors import MedSwinError
        from medswin.training.state import STATE_JSON

        if not (Path(resume) / "run" / STATE_JSON).is_file() or not (Path(resume) / "data").is_dir():
            raise MedSwinError(
                f"{resume}: not the folder of an interrupted demo build (needs data/ and run/{STATE_JSON})"
            )
        yield Path(resume), True
        return
    with tempfile.TemporaryDirectory(prefix=prefix, dir=work) as scratch:
        yield Path(scratch), False


def train_demo(
    pipeline: Any,
    prefix: str,
    write_data: Callable[[Path], None],
    evaluate: Callable[[Path], dict[str, float]],
    *,
    work: Path | None,
    epochs: int | None,
    resume: Path | None,
) -> tuple[Any, Any, dict[str, float], float]:
    """Write the training data (unless resuming), train, and score the best checkpoint.

    Returns ``(model, card, scores, start time)``; the scratch folder is removed afterwards unless
    it is the ``resume`` folder.
    """
    from medswin.models.checkpoints import load_checkpoint
    from medswin.training.trainer import train

    with scratch_folder(prefix, work, resume) as (scratch, resuming):
        data = scratch / "data"
        start = time.perf_counter()
        if not resuming:
            write_data(data)
            log.info("wrote the training data to %s in %.0f s", data, time.perf_counter() - start)
        result = train(pipeline, scratch / "run", data_root=data, epochs=epochs, resume=resuming)
        model, card = load_checkpoint(result.best_checkpoint)
        return model, card, evaluate(result.best_checkpoint), start


def build_demo_model(
    output: Path = DEFAULT_OUTPUT,
    pipeline_path: Path = DEFAULT_PIPELINE,
    *,
    work: Path | None = None,
    epochs: int | None = None,
    resume: Path | None = None,
) -> dict[str, float]:
    """Make the data, train, check and write the demo checkpoint; returns the fresh-phantom Dice per organ."""
    from medswin.data.builder import build_manifest
    from medswin.data.manifest import write_json
    from medswin.data.phantom_dataset import write_phantom_dataset
    from medswin.training.config import load_pipeline

    def write_data(data: Path) -> None:
        write_phantom_dataset(data, TRAIN_SEEDS, spacings=TRAIN_SPACINGS)
        write_json(data / "datalist.json", build_manifest(data, folds=7, seed=0))

    model, card, scores, start = train_demo(
        load_pipeline(pipeline_path),
        "medswin-demo-",
        write_data,
        evaluate_on_phantoms,
        work=work,
        epochs=epochs,
        resume=resume,
    )
    provenance = {
        "data": (
            f"medswin.data.phantom made-up CT phantoms, seeds {TRAIN_SEEDS[0]}-{TRAIN_SEEDS[-1]}, orientations LPS/RAS/oblique, "
            f"voxel sizes {', '.join('x'.join(f'{s:g}' for s in sp) for sp in TRAIN_SPACINGS)} mm; nnU-Net layout, "
            "datalist from medswin manifest --folds 7 (fold 0 validates)"
        ),
        "test_dice": "fresh phantoms seeds {seeds} (96x96x64, 3x3x4 mm, LPS/RAS/oblique): {summary}",
    }
    ship_demo_model(
        model,
        card,
        scores,
        output,
        provenance,
        start,
        "make demo-model (python -m medswin.training.demo_model)"
        + (f", resumed from {resume.name}" if resume else ""),
    )
    return scores


def ship_demo_model(
    model: Any,
    card: Any,
    scores: dict[str, float],
    output: Path,
    provenance: dict[str, str],
    start: float,
    made_by: str,
    min_dice: float = MIN_DICE,
) -> None:
    """Refuse a demo model below ``min_dice`` for any structure, else write it (float16) with its provenance.

    ``provenance`` values may use ``{seeds}`` and ``{summary}`` (the test seeds and Dice scores).
    """
    from medswin.errors import MedSwinError
    from medswin.models.checkpoints import save_checkpoint

    minutes = (time.perf_counter() - start) / 60
    summary = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    log.info("fresh phantoms %s: %s", TEST_SEEDS, summary)
    if min(scores.values()) <= min_dice:
        raise MedSwinError(
            f"the trained demo model reaches only {summary} on fresh phantoms (needs > {min_dice} per structure); "
            f"not writing {output}. Train longer (--epochs) or check the pipeline."
        )
    seeds = ", ".join(map(str, TEST_SEEDS))
    filled = {k: v.format(seeds=seeds, summary=summary) for k, v in provenance.items()}
    save_checkpoint(
        model.half(),
        card.replace(
            provenance={
                **card.provenance,
                **filled,
                "made_by": f"{made_by}, {minutes:.1f} min wall time",
                "weights": "stored as float16 to keep the file small; loaded into float32",
            }
        ),
        output,
    )


def refresh_card(checkpoint: Path) -> Any:
    """Re-embed the shipped card (``medswin/models/cards/<id>.json``) in ``checkpoint`` without retraining.

    Every field comes from the card file except the provenance, which keeps what the training run
    recorded (seeds, epochs, Dice) and adds the file's other entries. Refused when the card file
    describes another network (architecture, config or labels changed: that needs retraining).
    """
    from medswin.errors import MedSwinError
    from medswin.models.card import preset_card
    from medswin.models.checkpoints import read_checkpoint_card, replace_checkpoint_card

    embedded = read_checkpoint_card(checkpoint)
    shipped = preset_card(embedded.id)
    for field in ("architecture", "config", "channels", "labels", "activation", "regions", "roi_size"):
        if getattr(shipped, field) != getattr(embedded, field):
            raise MedSwinError(
                f"{checkpoint}: cards/{embedded.id}.json changes {field}, which the weights were trained for; "
                "retrain instead of refreshing the card"
            )
    merged = shipped.replace(provenance={**shipped.provenance, **embedded.provenance})
    replace_checkpoint_card(checkpoint, merged)
    return merged


def main(
    argv: list[str] | None = None,
    *,
    build: Any = None,
    output: Path = DEFAULT_OUTPUT,
    pipeline: Path = DEFAULT_PIPELINE,
    what: str = "the shipped demo model on CT phantoms",
) -> int:
    """Command line of a demo-model builder (``build(output, pipeline, work=, epochs=, resume=)`` -> Dice per structure)."""
    parser = argparse.ArgumentParser(description=f"Train {what}.")
    parser.add_argument("--output", type=Path, default=output, help="checkpoint to write")
    parser.add_argument("--pipeline", type=Path, default=pipeline, help="training pipeline YAML")
    parser.add_argument("--epochs", type=int, help="override the pipeline's epochs")
    parser.add_argument(
        "--work", type=Path, help="folder for the temporary data and run (default: system temp)"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="FOLDER",
        help="continue an interrupted build whose folder (data/ and run/) was left under --work",
    )
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="do not train: re-embed the shipped card file (volume ranges, intended use ...) in --output, "
        "keeping its weights and training provenance",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from medswin.errors import MedSwinError

    if args.card_only:
        try:
            card = refresh_card(args.output)
        except MedSwinError as error:
            print(f"medswin demo-model: error: {error}", file=sys.stderr)
            return 1
        print(f"refreshed the card embedded in {args.output} from cards/{card.id}.json")
        return 0

    try:
        scores = (build or build_demo_model)(
            args.output, args.pipeline, work=args.work, epochs=args.epochs, resume=args.resume
        )
    except MedSwinError as error:
        print(f"medswin demo-model: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: " + ", ".join(f"{k} Dice {v:.3f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
