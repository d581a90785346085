import json

import numpy as np
import pytest

from medswin.qc import Check, QualityReport, worst


def test_verdict_is_the_worst_check_and_reason_is_its_first_sentence():
    report = QualityReport(
        (
            Check("volume:liver", "ok", 1500.0, [900, 2600], ""),
            Check("sides:spleen", "warn", "right", "left", "The spleen lies on the patient's right."),
            Check("volume:spleen", "fail", 4.0, [50, 600], "The spleen is 4 mL, far below 50-600 mL."),
            Check("fit:spacing", "fail", 10.0, 2.0, "Slices are 10 mm thick."),
        )
    )
    assert report.verdict == "fail"
    assert report.reason.startswith("The spleen is 4 mL")
    assert [c.name for c in report.flagged()] == ["volume:spleen", "fit:spacing", "sides:spleen"]
    assert worst([]) == "ok" and worst(["ok", "warn"]) == "warn"


def test_record_block_round_trips_through_json_with_numpy_values():
    report = QualityReport((Check("confidence:liver", "ok", np.float32(0.93), (np.float64(0.5), None)),))
    block = json.loads(json.dumps(report.to_dict()))
    assert block == {
        "verdict": "ok",
        "checks": [
            {
                "name": "confidence:liver",
                "verdict": "ok",
                "value": pytest.approx(0.93),
                "limit": [0.5, None],
                "reason": "",
            }
        ],
    }
    assert QualityReport.from_dict(block).checks[0].name == "confidence:liver"
    assert QualityReport.from_dict(None).verdict == "ok"


def test_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="maybe"):
        Check("x", "maybe")
