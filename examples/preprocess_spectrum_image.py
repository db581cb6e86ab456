"""
Preprocess an Fe L2,3 spectrum image
====================================

Load (here: make) a raw-count Fe L2,3 EELS spectrum image, check its energy axis,
remove the power-law background pixel by pixel, resample onto the canonical grid,
normalise, and map the Fe L3 position — lazily, block by block.

Run: ``python examples/preprocess_spectrum_image.py``
"""

# %%
# A spectrum image with drift
# ---------------------------
# A 32 x 48 pixel Fe2+/Fe3+ spectrum image with a power-law background, Poisson
# noise and 1 eV of energy drift from top to bottom. With real data:
# ``s = hs.load("si.dm4", signal_type="FeL23", lazy=True)``.
import matplotlib.pyplot as plt
import numpy as np

from hyperspy_fe_ml.synthetic import synthetic_spectrum_image

s, truth = synthetic_spectrum_image((32, 48), drift=1.0, seed=2)
s = s.as_lazy()

# %%
# What the package finds on the energy axis: background present, L3 where?
report = s.check_fe_l23()
print(report)

# %%
# Drift correction and preprocessing
# ----------------------------------
# Pixel-by-pixel drift correction on the L3 edge (see the docstring's warning
# about chemical shifts), then the whole chain (background, resampling onto
# 700–729.9 eV, normalisation) in one lazy pass.
aligned = s.align_fe_l3()
clean = aligned.preprocess_fe_l23()
clean.compute()

# %%
# The L3 maximum before and after alignment
# -----------------------------------------
# The drift is gone from the map.
before = s.estimate_fe_l3_position()
before.compute()
after = aligned.estimate_fe_l3_position()
after.compute()
print(
    f"L3 spread along the drift: {np.ptp(before.data[:, 0]):.2f} eV before, "
    f"{np.ptp(after.data[:, 0]):.2f} eV after alignment"
)

# %%
# Maps and the mean preprocessed spectra of the Fe2+ and Fe3+ columns.
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), constrained_layout=True)
for ax, image, title in zip(
    axes[:2],
    (before.data, after.data),
    ("L3 maximum (eV)", "after align_fe_l3"),
    strict=True,
):
    im = ax.imshow(image, vmin=707.0, vmax=710.0, cmap="magma")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
grid = clean.axes_manager.signal_axes[0].axis
axes[2].plot(grid, clean.data[:, 0].mean(axis=0), label="Fe2+ column")
axes[2].plot(grid, clean.data[:, -1].mean(axis=0), label="Fe3+ column")
axes[2].set_xlabel("Energy loss (eV)")
axes[2].legend()
plt.show()
