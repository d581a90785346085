"""File > Open Sample > medswin: the made-up CT phantom, so a newcomer can try the plugin with no files."""

from __future__ import annotations

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from napari_medswin._layers import LayerDataTuple, image_to_layer_data
from napari_medswin._orientation import install_current

__all__ = ["ct_phantom"]


def ct_phantom() -> list[LayerDataTuple]:
    """The demo CT phantom (96×96×64 voxels, 3×3×4 mm, five organs) and its reference organ labels.

    The reference labels let the Compare widget score a prediction without any data download.
    """
    install_current()
    case = make_ct_phantom()
    case.image.meta["path"] = "ct_phantom"
    case.labels.meta["path"] = "ct_phantom"
    names = {value: name for value, (name, _) in PHANTOM_LABELS.items()}
    return [
        image_to_layer_data(case.image, "CT phantom"),
        image_to_layer_data(case.labels, "CT phantom reference", label_names=names),
    ]
