"""``medswin train --pipeline pipelines/train/<task>.yaml``: train a model with a recipe.

Thin shell over :func:`medswin.training.trainer.train`; under ``torchrun`` every process runs
this command and only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Train the model a pipeline describes on a datalist, validating with the same Predictor that
'medswin predict' uses, and write OUTPUT/best.safetensors (a medswin checkpoint whose card says
how it was made), OUTPUT/last.safetensors with its resumable state, and OUTPUT/metrics.csv.

  medswin train --pipeline pipelines/train/msd_task09_spleen_swin_unetr.yaml \\
      --data-root /data/Task09_Spleen --output runs/spleen

Several processes (DDP; NCCL on GPUs, gloo on CPUs):

  torchrun --nproc_per_node 4 -m medswin train --pipeline ... --output runs/spleen

Continue an interrupted run (model, optimiser, schedule and epoch are restored):

  medswin train --pipeline ... --output runs/spleen --resume
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model with a pipeline recipe (YAML); checkpoints carry their model card",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pipeline", required=True, type=Path, metavar="YAML", help="pipelines/train/<task>.yaml"
    )
    parser.add_argument(
        "--output", required=True, type=Path, metavar="DIR", help="run folder for checkpoints and logs"
    )
    parser.add_argument("--data-root", type=Path, metavar="DIR", help="folder the datalist's paths refer to")
    parser.add_argument(
        "--datalist", type=Path, metavar="JSON", help="datalist instead of the pipeline's data.datalist"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument("--epochs", type=int, help="train this many epochs in total (overrides the pipeline)")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"), help="override training.precision"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the pipeline's, usually auto)")
    parser.add_argument(
        "--init-from", type=Path, metavar="CKPT", help="start from these weights (overrides model.init_from)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medswin.errors import MedSwinError
    from medswin.training.config import load_pipeline
    from medswin.training.trainer import train

    if args.epochs is not None and args.epochs < 1:
        raise MedSwinError(f"--epochs must be at least 1, got {args.epochs}")
    pipeline = load_pipeline(args.pipeline)
    result = train(
        pipeline,
        args.output,
        data_root=args.data_root,
        datalist=args.datalist,
        resume=args.resume,
        epochs=args.epochs,
        precision=args.precision,
        device=args.device,
        init_from=args.init_from,
    )
    if not args.quiet and int(os.environ.get("RANK", "0")) == 0:
        best = (
            f"best mean validation Dice {result.best_metric:.4f} at epoch {result.best_epoch}"
            if result.best_metric is not None
            else "no validation cases (best = last epoch)"
        )
        print(
            f"trained {pipeline.name}: {result.epochs} epoch(s); {best}; checkpoint {result.best_checkpoint}"
        )
    return 0
