"""Speed of the augmentation chain against a plain NumPy version, same process.

Run: ``python benchmarks/bench_augment.py [--n N] [--repeat R]``

Both sides augment the same ``N`` background-free Fe L2,3 edges on the canonical grid
(700–729.9 eV, 0.1 eV, 300 channels) with the same drawn parameters:

- ours: :func:`hyperspy_fe_ml.kernels.augment.augment_batch` (numba kernels, one
  thread; parameter and noise draws included);
- NumPy: a loop over spectra with ``np.convolve`` for plural scattering (the Poisson
  series of the loss, summed to 12 orders) and broadening, ``np.interp`` for the
  energy scale, then vectorised noise, spikes, residuals and ``np.trapezoid``
  normalisation.

Figures are the best of ``--repeat`` runs, after a warm-up that compiles the kernels.
"""

import argparse
import math

import numpy as np
from timing import best_of


def numpy_augment(energy, spectra, rng, params, settings):
    """The same steps as ``augment_batch``, written plainly with NumPy."""
    from hyperspy_fe_ml.kernels.augment import FWHM_PER_SIGMA, drude_loss_weights

    n, n_ch = spectra.shape
    step = energy[1] - energy[0]
    out = np.empty_like(spectra)
    for p in range(n):
        row = spectra[p]
        t = params["thickness"][p]
        loss = drude_loss_weights(
            step,
            n_ch,
            params["plasmon_energy"][p],
            params["plasmon_width"][p],
            settings.plasmon_onset,
        )
        response = np.zeros(n_ch)
        power = np.zeros(n_ch)
        power[0] = 1.0
        for order in range(12):
            response += math.exp(-t) * t**order / math.factorial(order) * power
            power = np.convolve(power, loss)[:n_ch]
        row = np.convolve(row, response)[:n_ch] + row[0] * (1 - np.cumsum(response))
        sigma = params["fwhm"][p] / FWHM_PER_SIGMA
        m = int(4.0 * sigma / step)
        taps = np.exp(-0.5 * (np.arange(-m, m + 1) * step / sigma) ** 2)
        row = np.convolve(np.pad(row, m, mode="edge"), taps / taps.sum(), "valid")
        x = energy - settings.scale_reference
        at = (
            settings.scale_reference
            + (1 + params["dispersion"][p]) * x
            + params["quadratic"][p] * x**2
            + params["offset"][p]
        )
        out[p] = np.interp(at, energy, row)
    dose = params["dose"][:, None]
    gain = params["gain"][:, None]
    bkg = (
        params["background"][:, None]
        * dose
        * (energy / 708.0) ** -params["background_exponent"][:, None]
    )
    lam = dose * np.clip(out, 0, None) / out.max(axis=1, keepdims=True) + bkg
    counts = rng.poisson(lam)
    out = gain * (counts - bkg) + params["read_noise"][:, None] * rng.standard_normal(
        lam.shape
    )
    peak = (gain * dose)[:, 0]
    hit = rng.random(n) < settings.spike_probability
    rows = np.flatnonzero(hit)
    out[rows, rng.integers(0, n_ch, rows.size)] += 5.0 * peak[rows]
    middle = 0.5 * (energy[0] + energy[-1])
    out += peak[:, None] * (
        params["constant"][:, None]
        + params["slope"][:, None] * (energy - middle) / (energy[-1] - energy[0])
    )
    window = (energy >= 704.0) & (energy <= 727.0)
    area = np.trapezoid(out[:, window], energy[window], axis=1)
    return out / area[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from hyperspy_fe_ml.kernels.augment import AugmentationSettings, augment_batch
    from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV

    energy = CANONICAL_ENERGY_EV
    rng = np.random.default_rng(0)
    edge = np.exp(-0.5 * ((energy - 709.5) / 0.6) ** 2)
    edge += 0.4 * np.exp(-0.5 * ((energy - 722.3) / 0.8) ** 2)
    edge += 0.1 / (1 + np.exp(-(energy - 708.6) / 0.5))
    spectra = edge[None, :] * rng.uniform(0.5, 2.0, (args.n, 1))
    settings = AugmentationSettings()
    _, params = augment_batch(energy, spectra, np.random.default_rng(1), settings)

    def ours():
        augment_batch(energy, spectra, np.random.default_rng(1), settings)

    def plain():
        numpy_augment(energy, spectra, np.random.default_rng(1), params, settings)

    t_ours = best_of(ours, args.repeat)
    t_plain = best_of(plain, 1)
    print(f"{args.n} spectra x {energy.size} channels, one thread")
    print(
        f"augment_batch {t_ours:7.3f} s ({t_ours / args.n * 1e6:6.1f} us/spectrum)  "
        f"NumPy {t_plain:7.3f} s ({t_plain / args.n * 1e6:6.1f} us/spectrum)  "
        f"ratio {t_plain / t_ours:5.1f}x"
    )
    # Where our time goes.
    from hyperspy_fe_ml.kernels import augment as ka

    n = args.n
    stages = {
        "plural_scattering": lambda: ka.plural_scattering(
            energy,
            spectra,
            params["thickness"],
            params["plasmon_energy"],
            params["plasmon_width"],
            settings.plasmon_onset,
        ),
        "gaussian_broadening": lambda: ka.gaussian_broadening(
            energy, spectra, params["fwhm"]
        ),
        "distort_energy_scale": lambda: ka.distort_energy_scale(
            energy,
            spectra,
            params["offset"],
            params["dispersion"],
            params["quadratic"],
            settings.scale_reference,
        ),
        "add_noise": lambda: ka.add_noise(
            energy,
            spectra,
            np.random.default_rng(2),
            params["dose"],
            params["background"],
            params["background_exponent"],
            params["gain"],
            params["read_noise"],
        ),
    }
    for name, func in stages.items():
        t = best_of(func, args.repeat)
        print(f"  {name:22s} {t * 1e3:7.1f} ms ({t / n * 1e6:5.1f} us/spectrum)")


if __name__ == "__main__":
    main()
