"""The official Swin-X2S DRR program rebuilt from the same ITK classes (itk Python, a dev dependency):
the test oracle for medswin's emulation in :mod:`medswin.transforms.drr`.

Steps as the program runs them for ``-size 160 160 -rx -90 -ry 0|90`` on a CT whose direction is
identity: a CenteredEuler3DTransform given the matrix Rx·Ry and centred on voxel index n/2, a
RayCastInterpolateImageFunction with the focal point 1800 mm from that centre, a short->short
ResampleImageFilter onto a detector plane 200 mm on the other side.
"""

from __future__ import annotations

import numpy as np


def itk_official_sums(
    volume: np.ndarray, spacing: tuple[float, float, float], ry: float, size: int = 160
) -> np.ndarray:
    """The program's 16-bit DRR before its 8-bit rescale, ``(columns, rows)``; ``volume`` is ``(i, j, k)`` int16."""
    import itk

    image_type = itk.Image[itk.SS, 3]
    image = itk.image_from_array(np.ascontiguousarray(np.transpose(volume, (2, 1, 0))).astype(np.int16))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([-31.0, 17.0, -250.0])  # any origin: the program works relative to the volume
    transform_type = itk.CenteredEuler3DTransform[itk.D]
    about_x, about_y = transform_type.New(), transform_type.New()
    to_radians = np.pi / 180.0
    about_x.SetRotation(-90.0 * to_radians, 0.0, 0.0)
    about_y.SetRotation(0.0, ry * to_radians, 0.0)
    matrix = itk.array_from_matrix(about_x.GetMatrix()) @ itk.array_from_matrix(about_y.GetMatrix())
    transform = transform_type.New()
    transform.SetMatrix(itk.matrix_from_array(matrix))
    shape = np.asarray(volume.shape, dtype=np.float64)
    centre = np.asarray(image.GetOrigin()) + np.asarray(spacing) * shape / 2.0
    transform.SetCenter([float(c) for c in centre])
    extents = sorted(np.float32(s * np.float32(n)) for n, s in zip(volume.shape, spacing, strict=True))
    ratio = int(float(extents[2] / extents[1]) / 0.5)
    rows = int(size * 0.5 * ratio)
    pixel = float(np.float32(extents[2] / np.float32(rows)))
    caster = itk.RayCastInterpolateImageFunction[image_type, itk.D].New()
    caster.SetTransform(transform)
    caster.SetFocalPoint([float(centre[0]), float(centre[1]), float(centre[2] + 1800.0)])
    resample = itk.ResampleImageFilter[image_type, image_type].New()
    resample.SetInput(image)
    resample.SetDefaultPixelValue(-1024)
    resample.SetInterpolator(caster)
    resample.SetTransform(transform)
    resample.SetSize([size, rows, 1])
    resample.SetOutputSpacing([pixel, pixel, 1.0])
    resample.SetOutputOrigin(
        [centre[0] - pixel * (size - 1) / 2.0, centre[1] - pixel * (rows - 1) / 2.0, centre[2] - 200.0]
    )
    resample.Update()
    return itk.array_from_image(resample.GetOutput())[0].T.copy()


def itk_official_8bit(sums: np.ndarray) -> np.ndarray:
    """The program's RescaleIntensityImageFilter (short -> 0..255, truncated), divided by 255 as the scripts do."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(sums.T[None]).astype(np.int16))
    rescale = itk.RescaleIntensityImageFilter[itk.Image[itk.SS, 3], itk.Image[itk.UC, 3]].New()
    rescale.SetInput(image)
    rescale.SetOutputMinimum(0)
    rescale.SetOutputMaximum(255)
    rescale.Update()
    return (itk.array_from_image(rescale.GetOutput())[0].T / 255.0).astype(np.float32)


def itk_official_labels(
    labels: np.ndarray, spacing: tuple[float, float, float], size: int = 160
) -> np.ndarray:
    """The program's ``-is_seg_ct 1 -ct_size size size size`` label volume, ``(i, j, k)``: nearest neighbour,
    identity transform, ``size x size x rows`` voxels of ``longest / rows`` mm about voxel index n // 2."""
    import itk

    image_type = itk.Image[itk.SS, 3]
    image = itk.image_from_array(np.ascontiguousarray(np.transpose(labels, (2, 1, 0))).astype(np.int16))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([12.0, -7.0, 100.0])
    extents = sorted(np.float32(s * np.float32(n)) for n, s in zip(labels.shape, spacing, strict=True))
    ratio = int(float(extents[2] / extents[1]) / 0.5)
    rows = int(size * 0.5 * ratio)
    voxel = float(np.float32(extents[2] / np.float32(rows)))
    centre = image.TransformIndexToPhysicalPoint([int(n // 2) for n in labels.shape])
    resample = itk.ResampleImageFilter[image_type, image_type].New()
    resample.SetInput(image)
    resample.SetDefaultPixelValue(0)
    resample.SetInterpolator(itk.NearestNeighborInterpolateImageFunction[image_type, itk.D].New())
    resample.SetSize([size, size, rows])
    resample.SetOutputSpacing([voxel] * 3)
    resample.SetOutputOrigin(
        [float(centre[a]) - voxel * (n - 1) / 2.0 for a, n in enumerate((size, size, rows))]
    )
    resample.Update()
    return itk.array_from_image(resample.GetOutput()).transpose(2, 1, 0).copy()


def monai_official_view(png: np.ndarray, roi: tuple[int, int] = (128, 160), size: int = 160) -> np.ndarray:
    """The dataset scripts' chain on one DRR ``(columns, rows)`` in [0, 1]: pad square, bicubic resize, centre crop."""
    from monai import transforms

    chain = transforms.Compose(
        [
            transforms.EnsureChannelFirst(channel_dim="no_channel"),
            transforms.SpatialPad(spatial_size=(png.shape[-1], png.shape[-1])),
            transforms.Resize([size, size], mode="bicubic"),
            transforms.CenterSpatialCrop(roi),
        ]
    )
    return np.asarray(chain(np.asarray(png, dtype=np.float32)))[0]


def monai_official_labels(
    volume: np.ndarray, roi: tuple[int, int, int] = (128, 128, 160), size: int = 160
) -> np.ndarray:
    """The dataset scripts' label chain: flip the last axis, pad to a cube, nearest resize, centre crop."""
    from monai import transforms

    flipped = np.ascontiguousarray(np.flip(volume, axis=-1))
    side = flipped.shape[-1]
    chain = transforms.Compose(
        [
            transforms.EnsureChannelFirst(channel_dim="no_channel"),
            transforms.SpatialPad(spatial_size=(side, side, side)),
            transforms.Resize([size, size, size], mode="nearest"),
            transforms.CenterSpatialCrop(roi),
        ]
    )
    return np.asarray(chain(flipped.astype(np.float32)))[0].astype(np.uint8)
