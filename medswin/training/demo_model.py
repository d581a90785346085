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
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["TRAIN_SEEDS", "TEST_SEEDS", "build_demo_model", "evaluate_on_phantoms", "main"]

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


def build_demo_model(
    output: Path = DEFAULT_OUTPUT,
    pipeline_path: Path = DEFAULT_PIPELINE,
    *,
    work: Path | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Make the data, train, check and write the demo checkpoint; returns the fresh-phantom Dice per organ."""
    from medswin.data.builder import build_manifest
    from medswin.data.manifest import write_json
    from medswin.data.phantom_dataset import write_phantom_dataset
    from medswin.errors import MedSwinError
    from medswin.models.checkpoints import load_checkpoint, save_checkpoint
    from medswin.training.config import load_pipeline
    from medswin.training.trainer import train

    pipeline = load_pipeline(pipeline_path)
    with tempfile.TemporaryDirectory(prefix="medswin-demo-", dir=work) as scratch:
        data = Path(scratch) / "data"
        start = time.perf_counter()
        write_phantom_dataset(data, TRAIN_SEEDS, spacings=TRAIN_SPACINGS)
        write_json(data / "datalist.json", build_manifest(data, folds=7, seed=0))
        log.info(
            "wrote %d training phantoms to %s in %.0f s", len(TRAIN_SEEDS), data, time.perf_counter() - start
        )
        result = train(pipeline, Path(scratch) / "run", data_root=data, epochs=epochs)
        model, card = load_checkpoint(result.best_checkpoint)
        scores = evaluate_on_phantoms(result.best_checkpoint)
    minutes = (time.perf_counter() - start) / 60
    summary = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    log.info("fresh phantoms %s: %s", TEST_SEEDS, summary)
    if min(scores.values()) <= MIN_DICE:
        raise MedSwinError(
            f"the trained demo model reaches only {summary} on fresh phantoms (needs > {MIN_DICE} per organ); "
            f"not writing {output}. Train longer (--epochs) or check the pipeline."
        )
    provenance = {
        **card.provenance,
        "data": (
            f"medswin.data.phantom made-up CT phantoms, seeds {TRAIN_SEEDS[0]}-{TRAIN_SEEDS[-1]}, orientations LPS/RAS/oblique, "
            f"voxel sizes {', '.join('x'.join(f'{s:g}' for s in sp) for sp in TRAIN_SPACINGS)} mm; nnU-Net layout, "
            "datalist from medswin manifest --folds 7 (fold 0 validates)"
        ),
        "test_dice": f"fresh phantoms seeds {', '.join(map(str, TEST_SEEDS))} (96x96x64, 3x3x4 mm, LPS/RAS/oblique): {summary}",
        "made_by": f"make demo-model (python -m medswin.training.demo_model), {minutes:.1f} min wall time",
        "weights": "stored as float16 to keep the file small; loaded into float32",
    }
    save_checkpoint(model.half(), card.replace(provenance=provenance), output)
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the shipped demo model on CT phantoms.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="checkpoint to write")
    parser.add_argument("--pipeline", type=Path, default=DEFAULT_PIPELINE, help="training pipeline YAML")
    parser.add_argument("--epochs", type=int, help="override the pipeline's epochs")
    parser.add_argument(
        "--work", type=Path, help="folder for the temporary data and run (default: system temp)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from medswin.errors import MedSwinError

    try:
        scores = build_demo_model(args.output, args.pipeline, work=args.work, epochs=args.epochs)
    except MedSwinError as error:
        print(f"medswin demo-model: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: " + ", ".join(f"{k} Dice {v:.3f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
