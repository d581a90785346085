"""``make demo``: the main job on the embedded demo, end to end through the command line.

1. make a fresh CT phantom (a seed the demo model never saw, oblique affine, anisotropic voxels)
   and write it, and its true organ labels, as NIfTI;
2. ``medswin predict -m demo --keep-largest --preview`` on it (the shipped demo model; one
   connected component per organ, as a clinician would clean it up);
3. ``medswin evaluate`` the prediction against the truth and print Dice and HD95 per organ;
4. the X-ray path: an AP and a lateral DRR of the same phantom (the official Swin-X2S geometry at
   the demo model's size), ``medswin x2s predict -m demo-x2s`` turns the two images into a 3D label
   volume, and ``medswin x2s evaluate`` scores it against the phantom's organs on that grid.

Exit code 0 when every organ's Dice is above 0.9 for the CT model and above 0.6 for the X-ray model
(what the shipped models promise), else 1.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from medswin.cli.main import main as medswin
from medswin.data.phantom import PHANTOM_LABELS, PhantomCase, make_ct_phantom
from medswin.io import write_image, write_labels

MIN_DICE = 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Segment a made-up CT phantom with the shipped demo model.")
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument(
        "--seed", type=int, default=2026, help="phantom seed (the model trained on 1000-1027)"
    )
    parser.add_argument("--orientation", choices=("LPS", "RAS", "oblique"), default="oblique")
    args = parser.parse_args(argv)

    case = make_ct_phantom(orientation=args.orientation, seed=args.seed)  # 96x96x64 voxels of 3x3x4 mm
    scanner_ct = case.image.with_array(np.round(case.image.array))  # whole HU, stored as int16 like a scanner
    ct = write_image(scanner_ct, args.out / "input" / "phantom_ct.nii.gz", dtype="int16")
    write_labels(case.labels, args.out / "truth" / "phantom_ct.nii.gz", reference=case.image)
    print(f"wrote {ct}: {case.image!r}")

    prediction = args.out / "prediction"
    command = ["predict", "-i", str(ct), "-o", str(prediction), "-m", "demo", "--keep-largest", "--preview"]
    print("medswin " + " ".join(command))
    code = medswin([*command, "--overwrite"])
    if code != 0:
        return code
    metrics = args.out / "metrics.csv"
    code = medswin(
        ["-q", "evaluate", "--pred", str(prediction), "--gt", str(args.out / "truth"), "-o", str(metrics)]
    )
    if code != 0:
        return code
    with open(metrics, newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["case"] == "phantom_ct"]
    print(f"\n{'organ':<14}{'Dice':>8}{'HD95 mm':>10}{'pred mL':>10}{'true mL':>10}")
    for row in rows:
        print(
            f"{PHANTOM_LABELS[int(row['label'])][0]:<14}{float(row['dice']):>8.3f}{float(row['hd95']):>10.2f}"
            f"{float(row['vol_pred_ml']):>10.1f}{float(row['vol_ref_ml']):>10.1f}"
        )
    worst = min(float(row["dice"]) for row in rows)
    print(f"\npreview: {prediction / 'phantom_ct_preview.png'}; metrics: {metrics}")
    if worst <= MIN_DICE:
        print(
            f"the demo model scored Dice {worst:.3f} on some organ (expected > {MIN_DICE})", file=sys.stderr
        )
        return 1
    return xray_demo(case, args.out / "xray")


def xray_demo(case: PhantomCase, folder: Path) -> int:
    """Step 4: two DRRs of the phantom -> ``medswin x2s predict -m demo-x2s`` -> ``medswin x2s evaluate``."""
    from medswin.models.resolve import resolve_model
    from medswin.training.demo_x2s_model import MIN_DICE as MIN_XRAY_DICE
    from medswin.transforms.drr import biplanar_drr
    from medswin.transforms.radiograph import drr_geometry, in_radiograph_frame

    card = resolve_model("demo-x2s", load_weights=False)[1]
    drr = biplanar_drr(case.image, case.labels, drr_geometry(card))
    ap = write_image(drr.ap, folder / "phantom_ap.mha")
    lateral = write_image(drr.lateral, folder / "phantom_lateral.mha")
    truth = in_radiograph_frame(drr.labels)  # type: ignore[arg-type]  # where predictions from films lie
    write_labels(truth, folder / "truth" / "phantom_xray.nii.gz")
    print(f"\nwrote the AP and lateral DRRs {ap} and {lateral}")
    predicted = folder / "prediction" / "phantom_xray.nii.gz"
    command = [
        "x2s",
        "predict",
        "--ap",
        str(ap),
        "--lateral",
        str(lateral),
        "-m",
        "demo-x2s",
        "-o",
        str(predicted),
    ]
    print("medswin " + " ".join(command))
    code = medswin([*command, "--overwrite"])
    if code != 0:
        return code
    metrics = folder / "metrics.csv"
    code = medswin(
        [
            "-q",
            "x2s",
            "evaluate",
            "--pred",
            str(predicted.parent),
            "--gt",
            str(folder / "truth"),
            "-m",
            "demo-x2s",
            "-o",
            str(metrics),
        ]
    )
    if code != 0:
        return code
    with open(metrics, newline="") as stream:
        scores = {row["name"]: float(row["dice"]) for row in csv.DictReader(stream)}
    print("X-ray demo Dice (no background): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    if min(scores.values()) <= MIN_XRAY_DICE:
        print(f"the X-ray demo model scored below Dice {MIN_XRAY_DICE} on some organ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
