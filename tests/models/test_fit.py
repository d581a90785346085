"""check_fit: warnings (not refusals) when an image is not what a model card says it learnt from."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.data.phantom import make_ct_phantom
from medswin.io.geometry import reorient
from medswin.models import check_fit, preset_card


@pytest.fixture
def card():
    """The demo card: CT, abdomen, RAS 3x3x4 mm, 64x64x32 windows, HU window -175..250."""
    return preset_card("demo")


def _checks(image, card) -> list[str]:
    return [w.check for w in check_fit(image, card)]


def test_a_phantom_like_the_training_data_fits(card):
    case = make_ct_phantom()
    assert check_fit(case.image, card) == []


def test_dicom_modality_other_than_the_cards_is_named(card):
    image = make_ct_phantom().image
    image.meta["modality"] = "MR"
    warnings = check_fit(image, card)
    assert [w.check for w in warnings] == ["modality"]
    assert str(warnings[0]) == "the image is MR (DICOM Modality), the model was trained on CT"


def test_intensities_that_are_not_hounsfield_units(card):
    image = make_ct_phantom().image
    rescaled = image.with_array(image.array + 1024.0)  # stored values without the DICOM rescale
    warnings = check_fit(rescaled, card)
    assert [w.check for w in warnings] == ["intensity"]
    assert "do not look like CT Hounsfield units" in warnings[0].message
    blank = image.with_array(np.full_like(image.array, 3000.0))
    assert "almost blank" in check_fit(blank, card)[-1].message


def test_mr_card_warns_about_a_ct(card):
    mr_card = card.replace(modality="MR", intensity={"type": "zscore", "nonzero": True, "channel_wise": True})
    nifti = make_ct_phantom().image
    nifti.meta.pop("modality", None)  # a NIfTI says nothing: the intensities tell
    warnings = check_fit(nifti, mr_card)
    assert [w.check for w in warnings] == ["intensity"] and "look like CT" in warnings[0].message
    nifti.meta["modality"] = "CT"
    assert _checks(nifti, mr_card) == ["modality", "intensity"]


@pytest.mark.parametrize("orientation", ["LPS", "RAS"])
def test_coarse_slices_and_small_views_compare_per_patient_axis(card, orientation):
    """The card's spacing is for RAS axes: a file stored in another axis order is compared axis by axis."""
    thick = make_ct_phantom(shape=(96, 96, 8), spacing=(3.0, 3.0, 10.0), orientation=orientation).image
    thick = reorient(thick, "SPL")  # file axes: head-feet first
    warnings = check_fit(thick, card)
    assert [w.check for w in warnings] == ["spacing"]
    assert warnings[0].message.startswith("voxels are 10.00 mm head-feet, coarser than the model's 4.00 mm")

    crop = make_ct_phantom(shape=(96, 20, 64), orientation=orientation).image  # 60 mm front-back
    warnings = check_fit(crop, card)
    assert [w.check for w in warnings] == ["field_of_view"]
    assert warnings[0].message.startswith(
        "the image covers 60 mm front-back, under half of the model's 192 mm"
    )
    assert "abdomen" in warnings[0].message


def test_wrong_channel_count(card):
    image = make_ct_phantom().image
    two = image.with_array(np.concatenate([image.array, image.array]))
    assert _checks(two, card)[0] == "channels"


def test_card_summary_says_what_the_model_is_for(card):
    summary = card.summary()
    assert summary["modality"] == "CT" and summary["body region"].startswith("abdomen")
    assert summary["labels"] == "liver, spleen, kidney_right, kidney_left, vertebra"
    assert "not for real scans" in summary["intended use"]
    btcv = preset_card("swin_unetr_btcv").summary()
    assert btcv["intended use"].startswith("research use only")
    assert "Dice 81.86" in btcv["published score"]


def test_new_card_fields_round_trip_and_stay_out_of_old_cards(card):
    from medswin.models import ModelCard

    assert ModelCard.from_dict(card.to_dict()).body_region == card.body_region
    plain = card.replace(body_region="", intended_use="")
    assert "body_region" not in plain.to_dict() and "intended_use" not in plain.to_dict()


def _mr_like(case):
    """An MR-like volume of the phantom's anatomy: non-negative magnitudes, air dark, no HU."""
    return case.image.with_array(np.abs((case.image.array + 1000.0) * 0.8), modality="")


def test_a_ct_cropped_to_the_body_is_hounsfield_and_an_mr_like_volume_is_not(card):
    """No air around the body: the tissues (fat, soft tissue, bone) say CT, for a CT and an MR card alike."""
    from medswin.data.phantom import crop_to_body

    case = make_ct_phantom(orientation="oblique", seed=3)
    cropped = crop_to_body(case).image
    cropped.meta.pop("modality")  # a NIfTI export says nothing: the intensities tell
    assert float(cropped.array.min()) > -500.0  # no air left: the old "air near -1000 HU" rule said MR
    intensity = [w for w in check_fit(cropped, card) if w.check == "intensity"]
    assert intensity == []

    mr_card = card.replace(modality="MR", intensity={"type": "zscore", "nonzero": True, "channel_wise": True})
    warnings = check_fit(cropped, mr_card)
    assert [w.check for w in warnings] == ["intensity"] and warnings[0].severe
    assert "look like CT Hounsfield units (no air, but" in warnings[0].message
    assert "fat-like" in warnings[0].message

    mr = _mr_like(case)
    assert check_fit(mr, mr_card) == []
    warning = next(w for w in check_fit(mr, card) if w.check == "intensity")
    low, high = warning.value
    assert low >= 0.0 and warning.message.startswith(
        f"intensities {low:.0f}..{high:.0f} do not look like CT Hounsfield units (no air near -1000 HU"
    )
    assert "0.0% fat-like" in warning.message and not warning.severe
