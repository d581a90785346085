"""The preview PNG: each panel drawn in the radiological convention, checked on the rendered pixels."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.batch.outputs import write_preview
from medswin.data.phantom import make_ct_phantom


@pytest.mark.parametrize("orientation", ["LPS", "RAS"])
def test_sagittal_panel_shows_anterior_on_the_left(tmp_path, orientation):
    from matplotlib.image import imread

    case = make_ct_phantom(shape=(32, 32, 32), spacing=(1.0, 1.0, 1.0), orientation=orientation)
    image = case.image
    # mid-grey (0) in the anterior half of the patient, black (-1000) in the posterior half
    values = np.full(image.shape, -1000.0, dtype=np.float32)
    front = np.arange(image.shape[1]) < image.shape[1] // 2  # array axis 1 runs front-back
    if orientation == "RAS":  # RAS: Y runs towards anterior, so the anterior half has high indices
        front = front[::-1]
    values[:, front, :] = 0.0
    labels = case.labels.with_array(np.zeros_like(case.labels.array), kind="label")
    path = write_preview(
        image.with_array(values[None]), labels, tmp_path / "p.png", {}, "t", (-1000.0, 1000.0)
    )
    pixels = imread(path)[..., :3].mean(axis=2)
    sagittal = pixels[:, 2 * pixels.shape[1] // 3 :]  # the third panel
    grey = np.argwhere(np.abs(sagittal - 0.5) < 0.1)[:, 1]
    black = np.argwhere(sagittal < 0.1)[:, 1]
    assert grey.size > 100 and black.size > 100
    assert grey.mean() < black.mean()  # anterior (grey) drawn left of posterior (black)
