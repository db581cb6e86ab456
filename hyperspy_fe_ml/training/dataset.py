"""Training data: random mixtures of library spectra, augmented, with labels.

A pixel of a real sample holds iron on one or several sites. Each training spectrum
is a mixture of one to three parameter sets of the multiplet library (valence ×
site symmetry × crystal field × covalency) with Dirichlet-random weights per Fe
atom; the mixture is broadened, augmented with what experiments add
(:mod:`hyperspy_fe_ml.kernels.augment`) and normalised like the preprocessing does.
Its labels are the weight-averaged valence, the Fe3+ fraction, the tetrahedral
fraction and the mean coordination number.

The train / calibration / test split is **by library parameter set**: a parameter
set feeds one split only, so test spectra come from crystal fields and covalencies
the model never saw. Generation runs in blocks over Dask, each block seeded from a
:class:`numpy.random.SeedSequence`, so a dataset is the same whatever the scheduler
or the number of workers.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import TETRAHEDRAL_SITES
from hyperspy_fe_ml.library.reference import DRAW_RANGES
from hyperspy_fe_ml.model import OUTPUTS

#: Probability of one, two and three components in a mixture.
COMPONENT_PROBABILITIES = (0.45, 0.35, 0.20)
#: Spectra per Dask block.
BLOCK_SIZE = 1000


@dataclass(frozen=True)
class DatasetSettings:
    """How mixtures are drawn and augmented.

    Attributes
    ----------
    component_probabilities
        Probability of 1, 2, 3 components (single-site spectra are common in
        standards, mixtures in real samples).
    dirichlet_alpha
        Concentration of the Dirichlet weights (1 = uniform on the simplex).
    fwhm_l3, fwhm_l2
        Ranges of the Lorentzian widths, eV: from the atomic core-hole widths
        (PHYSICS.md: 0.36–0.46 eV for L3, 0.37–1.54 eV for L2) up to the widths
        fitted to experiment, which also absorb satellites the single-ion model
        lacks (docs/library.md; ``reference.DRAW_RANGES``).
    l3_width_slope
        Range of the growth of the L3 Lorentzian width, eV of FWHM per eV above
        the first L3 line, drawn per mixture like ``fwhm_l3``. Fits to measured
        standards give 0–0.43 (``reference.DRAW_RANGES``, docs/library.md), but
        a model trained with (0, 0.45) read the measured standards worse (300 000
        spectra: mean valence error 0.120 against 0.112, 84 % against 89 % within
        ±0.25) and the simulated test worse, so the default draws none.
    resolution
        Range of the intrinsic Gaussian broadening applied with the sticks, eV;
        the instrument's part is added by the augmentation.
    step
        Range of the continuum step height per Fe atom (library units,
        ``reference.DRAW_RANGES``).
    augment
        Apply the augmentation (noise, offsets, broadening, plural scattering,
        background artefacts, spikes); ``False`` gives clean mixtures.
    augmentation
        Keyword arguments of
        :class:`~hyperspy_fe_ml.kernels.augment.AugmentationSettings`.
    group_weights
        Relative probability of drawing a component from each (valence, site
        symmetry) group, keyed ``"3C4v"`` for one valence or ``"C4v"`` for both
        (the valence-specific key wins); groups not named weigh 1, a weight of 0
        leaves the group out. Empty (the default) draws every group equally
        often. ``docs/library.md`` ("What the shape decides") measures leaving
        the Fe3+ distorted sets out.
    crop_probability
        Probability that each end of a spectrum is cropped (independently), as
        published and digitised spectra and many acquisitions are: the channels
        beyond the crop become NaN, which the model's reading
        (:func:`~hyperspy_fe_ml.kernels.model_inputs.align_row`) fills with the
        nearest value exactly as prediction does for a short axis.
    crop_low, crop_high
        Ranges of the crop ends relative to the spectrum's L3 centroid, eV. The
        input contract reads spectra from 3 eV below the L3 maximum (about 3.9 eV
        below the centroid) to 2 eV above the L2 maximum (at least 13.9 eV
        above it); the ranges reach a little past both.
    library
        Path of the multiplet library to draw from (one written by ``fe-ml
        refine``), or None for the shipped one.
    fe3_shift
        Range of the shift of the Fe3+ components against the Fe2+ ones within
        a mixture, eV, drawn per mixture (single-valence spectra are aligned on
        their own L3 line and do not see it). The library's Fe2+/Fe3+ offset
        comes from chlorides (L3 maxima 2.06 eV apart, ``library.calibration``);
        oxides show 1.5–1.7 eV (PHYSICS.md). Drawing (-0.6, 0.05) — the two
        valences 1.45–2.1 eV apart — was measured (docs/library.md) and did not
        bring the mixed-valence standards (magnetite, YBaFe4O7) closer while it
        cost 0.01 in simulated valence RMSE, so the default draws none.
    octahedral_ten_dq_min
        Weakest 10Dq (eV) of the Fe2+ and Fe3+ octahedral-type (Oh, D4h) sets
        drawn. The library's grid starts at 0.6 (Fe2+) and 0.8 eV (Fe3+), below
        the fields of real octahedral sites: PHYSICS.md ties the Fe3+ oxide
        pre-peak to 10Dq 1.2–1.4 eV and the Fe2+ +2.7 eV feature to 0.8–1.0 eV.
        A weaker Fe3+ Oh set looks like an Oh + Td mixture, or like Fe2+. Left
        out, the measured standards read closer to their valence (mean error
        0.110 → 0.088 at 60 000 spectra, docs/library.md); the sets stay in the
        library (matching, out-of-distribution tests).
    energy_scale
        Stretch of the library's energy scale (the L3–L2 spacing); None keeps
        the calibrated :data:`~hyperspy_fe_ml.library.calibration.ENERGY_SCALE`.
        ``fe-ml refine`` sets it from the standards
        (:mod:`~hyperspy_fe_ml.library.recalibrate`).
    """

    component_probabilities: tuple[float, float, float] = COMPONENT_PROBABILITIES
    dirichlet_alpha: float = 1.0
    fwhm_l3: tuple[float, float] = DRAW_RANGES["fwhm_l3"]
    fwhm_l2: tuple[float, float] = DRAW_RANGES["fwhm_l2"]
    l3_width_slope: tuple[float, float] = (0.0, 0.0)
    resolution: tuple[float, float] = (0.1, 0.4)
    step: tuple[float, float] = DRAW_RANGES["step"]
    augment: bool = True
    augmentation: dict[str, Any] = field(default_factory=dict)
    group_weights: dict[str, float] = field(default_factory=dict)
    crop_probability: float = 0.4
    crop_low: tuple[float, float] = (-9.0, -3.3)
    crop_high: tuple[float, float] = (13.0, 21.0)
    fe3_shift: tuple[float, float] = (0.0, 0.0)
    library: str | None = None
    octahedral_ten_dq_min: tuple[float, float] = (0.75, 1.15)
    energy_scale: float | None = None


def draw_range(
    rng: np.random.Generator, bounds: tuple[float, float], n: int
) -> np.ndarray:
    """``n`` uniform draws from ``bounds``; a degenerate range (low == high)
    draws nothing from ``rng``, so switching a draw off leaves every later draw
    — and a seeded dataset — as it was without that draw.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> draw_range(rng, (0.0, 0.0), 3).tolist(), float(rng.random()) == float(
    ...     np.random.default_rng(0).random())
    ([0.0, 0.0, 0.0], True)
    """
    if bounds[0] == bounds[1]:
        return np.full(n, float(bounds[0]))
    return rng.uniform(bounds[0], bounds[1], n)


def split_parameter_sets(
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    names: Sequence[str] = ("train", "calibration", "test"),
    library: str | None = None,
    octahedral_ten_dq_min: tuple[float, float] = (0.0, 0.0),
) -> dict[str, np.ndarray]:
    """Split the library's parameter sets, stratified by valence and symmetry.

    Parameters
    ----------
    fractions
        Share of each split (normalised to sum 1).
    seed
        Seed of the shuffle.
    names
        Names of the splits.
    library
        Path of the library (None: the shipped one).
    octahedral_ten_dq_min
        Weakest 10Dq (eV) of the octahedral-type (Oh, D4h) sets of Fe2+ and
        Fe3+ that take part; weaker sets are left out of every split
        (:attr:`DatasetSettings.octahedral_ten_dq_min`). ``(0, 0)`` keeps all.

    Returns
    -------
    dict
        Split name → sorted array of parameter-set ids (library rows); each group
        (valence, coordination) is divided in the given proportions, with at least
        one set per split where the group has enough sets.

    Examples
    --------
    >>> splits = split_parameter_sets(seed=1)
    >>> sorted(splits)
    ['calibration', 'test', 'train']
    >>> bool(set(splits["train"]).isdisjoint(splits["test"]))
    True
    """
    from hyperspy_fe_ml.library.shipped import library_for

    if len(fractions) != len(names):
        raise ValueError("give one fraction per split name")
    weights = np.asarray(fractions, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"fractions {fractions} must be >= 0 and not all zero")
    weights = weights / weights.sum()
    table = library_for(library).table
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {name: [] for name in names}
    groups = sorted(
        {
            (int(v), str(c))
            for v, c in zip(table["valence"], table["coordination"], strict=True)
        }
    )
    weakest = dict(zip((2, 3), octahedral_ten_dq_min, strict=True))
    for valence, coordination in groups:
        member = (table["valence"] == valence) & (table["coordination"] == coordination)
        if coordination in ("Oh", "D4h") and valence in weakest:
            member &= table["ten_dq"] >= weakest[valence] - 1e-9
        rows = rng.permutation(np.flatnonzero(member))
        counts = np.floor(weights * rows.size).astype(int)
        # Give the remainder to the splits that are furthest below their share,
        # and at least one set to every split with a share, where possible.
        for k in np.argsort(-(weights * rows.size - counts)):
            if counts.sum() >= rows.size:
                break
            counts[k] += 1
        for k in range(len(names)):
            if weights[k] > 0 and counts[k] == 0 and counts.max() > 1:
                counts[np.argmax(counts)] -= 1
                counts[k] += 1
        start = 0
        for name, count in zip(names, counts, strict=True):
            out[name].extend(rows[start : start + count].tolist())
            start += count
    return {name: np.sort(np.asarray(ids, dtype=np.int64)) for name, ids in out.items()}


def mixture_labels(
    weights: np.ndarray,
    valence: np.ndarray,
    coordination_number: np.ndarray,
    tetrahedral: np.ndarray,
) -> np.ndarray:
    """Labels of mixtures from the labels of their components.

    Parameters
    ----------
    weights
        Fe-atom fractions, shape ``(n, k)``, rows summing to 1.
    valence, coordination_number, tetrahedral
        Component labels, shape ``(n, k)``; ``tetrahedral`` is 1 for Td sites.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 4)``, columns :data:`~hyperspy_fe_ml.model.OUTPUTS`: mean
        valence, Fe3+/ΣFe, tetrahedral fraction, mean coordination number.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[1 / 3, 1 / 3, 1 / 3]])            # magnetite, Fe3O4
    >>> mixture_labels(w, np.array([[3, 3, 2]]), np.array([[4, 6, 6]]),
    ...                np.array([[1, 0, 0]])).round(3)
    array([[2.667, 0.667, 0.333, 5.333]])
    """
    fe3 = (valence == 3).astype(np.float64)
    return np.stack(
        [
            np.sum(weights * valence, axis=1),
            np.sum(weights * fe3, axis=1),
            np.sum(weights * tetrahedral, axis=1),
            np.sum(weights * coordination_number, axis=1),
        ],
        axis=1,
    )


def draw_mixtures(
    n: int,
    energy: np.ndarray,
    set_ids: np.ndarray,
    rng: np.random.Generator,
    settings: DatasetSettings = DatasetSettings(),
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Clean (not yet augmented) mixture spectra with labels.

    Parameters
    ----------
    n
        Number of spectra.
    energy
        Energy axis, eV.
    set_ids
        Parameter sets to draw components from (one split).
    rng
        Random generator.
    settings
        See :class:`DatasetSettings`.

    Returns
    -------
    spectra
        Shape ``(n, channels)``: the sum of the weighted component spectra (per Fe
        atom, so the white-line intensity follows the number of 3d holes).
    targets
        Shape ``(n, 4)``, see :func:`mixture_labels`.
    info
        ``n_components``, ``main_set`` (the set with the largest weight) and
        ``components`` (``(n, 3)`` set ids, −1 where unused).
    """
    from hyperspy_fe_ml.library.reference import broaden_library
    from hyperspy_fe_ml.library.shipped import library_for

    library = library_for(settings.library)
    table = library.table
    set_ids = np.asarray(set_ids, dtype=np.int64)
    if set_ids.size == 0:
        raise ValueError("set_ids is empty: no parameter set to draw from")
    p = np.asarray(settings.component_probabilities, dtype=np.float64)
    n_components = rng.choice(np.arange(1, p.size + 1), size=n, p=p / p.sum())
    k_max = int(p.size)
    components = _balanced_choice(
        set_ids, table, rng, (n, k_max), settings.group_weights
    )
    weights = rng.dirichlet(np.full(k_max, settings.dirichlet_alpha), size=n)
    weights[np.arange(k_max)[None, :] >= n_components[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    components[weights == 0.0] = -1

    broadening = {
        name: rng.uniform(*getattr(settings, name), n)
        for name in ("fwhm_l3", "fwhm_l2", "resolution", "step")
    }
    broadening["l3_width_slope"] = draw_range(rng, settings.l3_width_slope, n)
    fe3_shift = draw_range(rng, settings.fe3_shift, n)
    spectra = np.zeros((n, energy.size))
    valence = np.zeros((n, k_max))
    coordination_number = np.zeros((n, k_max))
    tetrahedral = np.zeros((n, k_max))
    for k in range(k_max):
        used = components[:, k] >= 0
        if not np.any(used):
            continue
        rows = components[used, k]
        spectra[used] += weights[used, k, None] * broaden_library(
            rows,
            energy,
            **{name: values[used] for name, values in broadening.items()},
            shift=np.where(table["valence"][rows] == 3, fe3_shift[used], 0.0),
            library=library,
            energy_scale=settings.energy_scale,
        )
        valence[used, k] = table["valence"][rows]
        coordination_number[used, k] = table["coordination_number"][rows]
        tetrahedral[used, k] = np.isin(table["coordination"][rows], TETRAHEDRAL_SITES)
    targets = mixture_labels(weights, valence, coordination_number, tetrahedral)
    info = {
        "n_components": n_components,
        "main_set": components[np.arange(n), np.argmax(weights, axis=1)],
        "components": components,
    }
    return spectra, targets, info


def _balanced_choice(
    set_ids: np.ndarray,
    table: dict[str, np.ndarray],
    rng: np.random.Generator,
    shape: tuple[int, int],
    group_weights: dict[str, float] | None = None,
) -> np.ndarray:
    """Parameter sets drawn with each (valence, site symmetry) group equally likely.

    The library holds many more octahedral and distorted sets than tetrahedral
    ones; drawing sets uniformly would teach the model that tetrahedral iron is
    rare and shrink its tetrahedral calls towards zero.
    """
    groups = np.char.add(
        table["valence"][set_ids].astype(str),
        table["coordination"][set_ids].astype(str),
    )
    names, inverse = np.unique(groups, return_inverse=True)
    if group_weights:
        p = np.array(
            [
                group_weights.get(str(name), group_weights.get(str(name)[1:], 1.0))
                for name in names
            ],
            dtype=float,
        )
        group = rng.choice(names.size, shape, p=p / p.sum())
    else:
        group = rng.integers(0, names.size, shape)
    out = np.empty(shape, dtype=np.int64)
    for k in range(names.size):
        members = set_ids[inverse == k]
        hit = group == k
        out[hit] = rng.choice(members, int(hit.sum()))
    return out


def make_block(
    n: int,
    energy: np.ndarray,
    set_ids: np.ndarray,
    seed: np.random.SeedSequence | int,
    settings: DatasetSettings = DatasetSettings(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of augmented, normalised training spectra.

    Returns
    -------
    spectra
        Shape ``(n, channels)``, normalised to unit white-line integral
        (704–727 eV), as :meth:`~hyperspy_fe_ml.signals.FeL23Signal.preprocess_fe_l23`
        does, then cropped at random (:func:`random_crops`: NaN beyond a crop).
    targets
        Shape ``(n, 4)``.
    meta
        Shape ``(n, 2)``: number of components and main parameter set.
    """
    rng = np.random.default_rng(seed)
    spectra, targets, info = draw_mixtures(n, energy, set_ids, rng, settings)
    spectra = augment_normalise_crop(energy, spectra, rng, settings)
    meta = np.stack([info["n_components"], info["main_set"]], axis=1)
    return spectra, targets, meta


def augment_normalise_crop(
    energy: np.ndarray,
    spectra: np.ndarray,
    rng: np.random.Generator,
    settings: DatasetSettings,
) -> np.ndarray:
    """What every training spectrum goes through after it is drawn: the
    augmentation (when ``settings.augment``), the white-line normalisation
    (704–727 eV, as :meth:`~hyperspy_fe_ml.signals.FeL23Signal.preprocess_fe_l23`
    does) and random crops (:func:`random_crops`).

    Library mixtures (:func:`make_block`), measured standards
    (:func:`~hyperspy_fe_ml.training.standards.make_standard_block`) and foreign
    states (:func:`~hyperspy_fe_ml.training.state_detector.make_foreign_block`)
    all pass through here, so they are treated alike.
    """
    from hyperspy_fe_ml.kernels.preprocess import NORMALISE_INTEGRAL, normalise_spectra

    if settings.augment:
        from hyperspy_fe_ml.kernels.augment import AugmentationSettings, augment_batch

        spectra, _ = augment_batch(
            energy, spectra, rng, AugmentationSettings(**settings.augmentation)
        )
    spectra = normalise_spectra(energy, spectra, 704.0, 727.0, NORMALISE_INTEGRAL)
    if settings.augment and settings.crop_probability > 0:
        spectra = random_crops(energy, spectra, rng, settings)
    return spectra


def random_crops(
    energy: np.ndarray,
    spectra: np.ndarray,
    rng: np.random.Generator,
    settings: DatasetSettings = DatasetSettings(),
) -> np.ndarray:
    """Spectra with either end cut off at random, relative to their L3 centroid.

    Parameters
    ----------
    energy
        Energy grid, eV.
    spectra
        Shape ``(n, channels)``.
    rng
        Random generator (two uniform and two Bernoulli draws per spectrum, always,
        so later draws do not depend on the probability).
    settings
        ``crop_probability``, ``crop_low`` and ``crop_high``.

    Returns
    -------
    numpy.ndarray
        A copy with NaN beyond each crop.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(700.0, 730.0, 0.1)
    >>> y = np.exp(-0.5 * ((g - 709.0) / 0.8) ** 2)[None, :].repeat(200, axis=0)
    >>> out = random_crops(g, y, np.random.default_rng(0))
    >>> bool(np.isnan(out).any()), bool(np.isfinite(out[:, 60:210]).all())
    (True, True)
    """
    from hyperspy_fe_ml.kernels.preprocess import l3_centroid
    from hyperspy_fe_ml.model import (
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
        L3_CENTROID_WINDOW_EV,
    )

    n = spectra.shape[0]
    low = rng.uniform(*settings.crop_low, n)
    high = rng.uniform(*settings.crop_high, n)
    cut_low = rng.random(n) < settings.crop_probability
    cut_high = rng.random(n) < settings.crop_probability
    centroid = l3_centroid(
        np.ascontiguousarray(energy, dtype=np.float64),
        np.ascontiguousarray(spectra, dtype=np.float64),
        *L3_CENTROID_WINDOW_EV,
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
    )
    ok = np.isfinite(centroid)
    start = np.where(cut_low & ok, centroid + low, -np.inf)
    end = np.where(cut_high & ok, centroid + high, np.inf)
    out = np.array(spectra, dtype=np.float64, copy=True)
    outside = (energy[None, :] < start[:, None]) | (energy[None, :] > end[:, None])
    out[outside] = np.nan
    return out


def make_dataset(
    n: int,
    energy: np.ndarray,
    set_ids: np.ndarray,
    seed: int,
    settings: DatasetSettings = DatasetSettings(),
    *,
    block_size: int = BLOCK_SIZE,
    show_progressbar: bool = False,
    block: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``n`` spectra in Dask blocks (deterministic for a given seed).

    ``block`` makes one block (default :func:`make_block`; same arguments and
    returns).

    Runs on the active Dask scheduler (threads by default, or a
    ``dask.distributed`` client). Spectra that came out non-finite (e.g. a mixture
    whose white-line integral vanished) are dropped, so fewer than ``n`` may
    return.

    Returns
    -------
    spectra, targets, meta
        See :func:`make_block`.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV
    >>> ids = split_parameter_sets(seed=0)["train"]
    >>> x, y, meta = make_dataset(8, CANONICAL_ENERGY_EV, ids, seed=3, block_size=4)
    >>> x.shape, y.shape
    ((8, 300), (8, 4))
    """
    import dask

    sizes = [block_size] * (n // block_size)
    if n % block_size:
        sizes.append(n % block_size)
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    energy = np.asarray(energy, dtype=np.float64)
    tasks = [
        dask.delayed(block or make_block)(size, energy, set_ids, block_seed, settings)
        for size, block_seed in zip(sizes, seeds, strict=True)
    ]
    if show_progressbar:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc="training spectra"):
            blocks = dask.compute(*tasks)
    else:
        blocks = dask.compute(*tasks)
    spectra = np.concatenate([b[0] for b in blocks])
    targets = np.concatenate([b[1] for b in blocks])
    meta = np.concatenate([b[2] for b in blocks])
    # NaN may pad the ends (crops); rows non-finite elsewhere (e.g. a mixture
    # whose white-line integral vanished) are dropped.
    from hyperspy_fe_ml.kernels.model_inputs import contiguous_finite

    keep = contiguous_finite(spectra)
    return spectra[keep], targets[keep], meta[keep]


def target_names() -> tuple[str, ...]:
    """Column names of the targets (:data:`~hyperspy_fe_ml.model.OUTPUTS`)."""
    return OUTPUTS


def with_augmentation(settings: DatasetSettings, **changes: Any) -> DatasetSettings:
    """A copy of ``settings`` with some augmentation settings changed."""
    return replace(settings, augmentation={**settings.augmentation, **changes})
