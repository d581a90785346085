"""Do the X-ray checks separate real AP/lateral pairs from mirrored, swapped and duplicated films?

For ``--pairs`` fresh phantoms (seeds the demo model never saw, LPS/RAS/oblique in turn) it casts the AP
and lateral DRRs as ``medswin x2s predict`` gets them from the demo (``medswin.demo``) and runs the
shipped ``demo-x2s`` model on four pairs each:

* ``correct``: the AP and the lateral film;
* ``mirrored``: the AP film flipped left-right, its orientation still read as L\\F;
* ``swapped``: the lateral film given as the AP and the AP film as the lateral;
* ``duplicated``: the AP film given as both views.

For each it records the mean view agreement (Dice between the AP and the lateral branch's own
reconstructions, :func:`medswin.qc.x2s.view_agreement`), the correlation of the two prepared views
(:func:`medswin.qc.x2s.same_film_similarity`), the side checks, and the verdict the limits in
:mod:`medswin.qc.x2s` give. On the correct pairs it also times the checks against the network.

    python benchmarks/bench_x2s_qc.py [--pairs 20] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

SCENARIOS = ("correct", "mirrored", "swapped", "duplicated")
FIRST_SEED = 7400
ORIENTATIONS = ("LPS", "RAS", "oblique")


def measure(predictor: Any, ap: Any, lateral: Any) -> dict[str, Any]:
    """Agreement, view similarity and the checks' verdict of one pair (duplicates are not refused here)."""
    from medswin.qc.x2s import agreement_checks, same_film_similarity, side_checks, view_agreement
    from medswin.transforms.radiograph import output_grid, prepare_views

    card = predictor.card
    front, side, spacing = prepare_views(ap, lateral, card)
    logits_ap, logits_lateral = predictor.branch_logits(front.array[None, None], side.array[None, None])
    labels = (logits_ap + logits_lateral).argmax(dim=1)[0].numpy().astype(np.uint8)
    agreement = view_agreement(
        logits_ap.argmax(dim=1)[0], logits_lateral.argmax(dim=1)[0], card.label_names()
    )
    grid = output_grid(card, spacing).with_array(labels[None], kind="label")
    checks = [*agreement_checks(agreement), *side_checks(grid, card.label_names())]
    found = [v for v in agreement.values() if v is not None]
    return {
        "agreement": float(np.mean(found)) if found else 0.0,
        "per_structure": agreement,
        "similarity": same_film_similarity(front.array, side.array),
        "sides": {c.name: c.value for c in checks if c.name.startswith("sides:")},
        "agreement_verdict": next(c.verdict for c in checks if c.name == "agreement"),
        "sides_verdict": max((c.verdict for c in checks if c.name.startswith("sides:")), default="ok"),
    }


def main() -> None:
    from medswin.data.phantom import make_ct_phantom
    from medswin.inference.x2s import X2SPredictor
    from medswin.qc.core import worst
    from medswin.qc.x2s import AGREEMENT_LIMITS, SAME_FILM_LIMIT
    from medswin.transforms.drr import biplanar_drr
    from medswin.transforms.radiograph import drr_geometry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args()

    predictor = X2SPredictor("demo-x2s")
    geometry = drr_geometry(predictor.card)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SCENARIOS}
    qc_seconds, network_seconds = [], []
    for index in range(args.pairs):
        seed = FIRST_SEED + index
        case = make_ct_phantom(orientation=ORIENTATIONS[index % 3], seed=seed)  # type: ignore[arg-type]
        drr = biplanar_drr(case.image, case.labels, geometry)
        ap, lateral = drr.ap, drr.lateral
        mirrored = ap.with_array(np.ascontiguousarray(ap.array[:, ::-1]))
        pairs = {
            "correct": (ap, lateral),
            "mirrored": (mirrored, lateral),
            "swapped": (lateral, ap),
            "duplicated": (ap, ap),
        }
        for scenario, (first, second) in pairs.items():
            rows[scenario].append({"seed": seed, **measure(predictor, first, second)})
        timed = predictor.predict(ap, lateral)
        qc_seconds.append(timed.timings["qc"])
        network_seconds.append(timed.timings["inference"])

    print(
        f"demo-x2s, {args.pairs} fresh phantom pairs per scenario (seeds {FIRST_SEED}-{FIRST_SEED + args.pairs - 1})"
    )
    print(
        f"limits: agreement warn < {AGREEMENT_LIMITS[0]}, fail < {AGREEMENT_LIMITS[1]}; same film > {SAME_FILM_LIMIT}"
    )
    header = (
        f"{'scenario':<11}{'agreement median [min, max]':>30}{'view corr. max':>16}{'liver x mm median':>19}"
    )
    print(header + f"{'agr. flagged':>14}{'sides flagged':>15}{'refused':>9}{'flagged':>9}")
    summary: dict[str, Any] = {}
    for scenario, found in rows.items():
        values = np.array([r["agreement"] for r in found])
        similarity = np.array([r["similarity"] for r in found])
        liver = np.array([r["sides"].get("sides:liver", np.nan) for r in found], dtype=float)
        refused = int(np.sum(similarity > SAME_FILM_LIMIT))
        agreement_flagged = sum(r["agreement_verdict"] != "ok" for r in found)
        sides_flagged = sum(r["sides_verdict"] != "ok" for r in found)
        flagged = sum(
            r["similarity"] > SAME_FILM_LIMIT or worst((r["agreement_verdict"], r["sides_verdict"])) != "ok"
            for r in found
        )
        summary[scenario] = {
            "agreement_median": float(np.median(values)),
            "agreement_min": float(values.min()),
            "agreement_max": float(values.max()),
            "similarity_max": float(similarity.max()),
            "liver_x_mm_median": float(np.nanmedian(liver)),
            "agreement_flagged": agreement_flagged,
            "sides_flagged": sides_flagged,
            "refused": refused,
            "flagged": flagged,
        }
        print(
            f"{scenario:<11}{np.median(values):>12.3f} [{values.min():.3f}, {values.max():.3f}]"
            f"{similarity.max():>16.3f}{np.nanmedian(liver):>19.1f}"
            f"{agreement_flagged:>14}{sides_flagged:>15}{refused:>9}{flagged:>9}"
        )
    share = float(np.median(np.array(qc_seconds) / np.array(network_seconds)))
    print(
        f"checks: median {np.median(qc_seconds) * 1000:.1f} ms after a {np.median(network_seconds) * 1000:.0f} ms "
        f"network run ({100 * share:.1f} %)"
    )
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"summary": summary, "rows": rows, "qc_share": share}, stream, indent=1, default=float)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")
