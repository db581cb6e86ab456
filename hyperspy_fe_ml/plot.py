"""Figures of Fe-state maps: one panel per quantity, colour bars, a valence composite.

:func:`plot_fe_state_maps` draws what :class:`~hyperspy_fe_ml.maps.FeStateMaps`
holds with Matplotlib, whatever the backend (inline in Jupyter, a window, or Agg
for files): 2-D maps as images on their calibrated axes, line scans as profiles
with ±1 standard deviation bands, a single spectrum as a table of values. The
valence is drawn with a diverging colour map centred on 2.5 (blue Fe2+, red
Fe3+), fractions on 0–1, and the Fe2+/Fe3+ composite puts the Fe3+ fraction in red,
the Fe2+ fraction in blue and the confidence in the brightness.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from hyperspy.signal import BaseSignal

#: Default panels, in order (those present in the maps are drawn).
DEFAULT_PANELS: tuple[str, ...] = (
    "valence",
    "valence_std",
    "fe3_fraction",
    "td_fraction",
    "coordination_number",
    "ood_score",
    "flags",
)

#: Colour map, limits and label of each known quantity.
STYLES: dict[str, dict[str, Any]] = {
    "valence": {"cmap": "RdBu_r", "limits": (2.0, 3.0), "label": "Fe valence"},
    "fe3_fraction": {"cmap": "viridis", "limits": (0.0, 1.0), "label": "Fe³⁺/ΣFe"},
    "td_fraction": {"cmap": "cividis", "limits": (0.0, 1.0), "label": "Td Fe fraction"},
    "coordination_number": {
        "cmap": "PuOr",
        "limits": (4.0, 6.0),
        "label": "Fe coordination number",
    },
    "ood_score": {"cmap": "magma", "limits": None, "label": "OOD score"},
    "reconstruction_misfit": {
        "cmap": "magma",
        "limits": None,
        "label": "Library misfit (noise units)",
    },
    "spike_score": {"cmap": "magma", "limits": None, "label": "Spike (noise units)"},
    "metallic_fraction": {
        "cmap": "bone_r",
        "limits": (0.0, 1.0),
        "label": "Metallic Fe fraction",
    },
    "unlisted_fraction": {
        "cmap": "bone_r",
        "limits": (0.0, 1.0),
        "label": "Low-spin or Fe⁴⁺ fraction",
    },
    "l3_centroid": {"cmap": "plasma", "limits": None, "label": "L₃ centroid (eV)"},
    "l3_position": {"cmap": "plasma", "limits": None, "label": "L₃ maximum (eV)"},
    "edge_snr": {"cmap": "gray", "limits": None, "label": "White-line SNR"},
    "white_line_ratio": {"cmap": "viridis", "limits": None, "label": "L₃/L₂ ratio"},
}
_STD_STYLE = {"cmap": "magma", "limits": None}


def plot_fe_state_maps(
    maps: Mapping[str, BaseSignal],
    names: Sequence[str] | None = None,
    *,
    composite: bool = True,
    columns: int = 4,
    panel_size: float = 3.6,
    threshold: float | None = None,
):
    """Draw Fe-state maps in one figure.

    Parameters
    ----------
    maps
        :class:`~hyperspy_fe_ml.maps.FeStateMaps` (or any mapping of name to
        signal over the same navigation space). Lazy maps are computed.
    names
        Quantities to draw; default :data:`DEFAULT_PANELS` that are present (or
        every map, if none of them is).
    composite
        Add the Fe2+/Fe3+ colour composite (2-D maps with ``fe3_fraction``).
    columns
        Panels per row.
    panel_size
        Size of one panel, inches.
    threshold
        OOD threshold to mark on the ``ood_score`` colour bar; default from the
        maps' provenance.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
    >>> s, _ = synthetic_spectrum_image((6, 8))
    >>> fig = plot_fe_state_maps(s.predict_fe_state())
    >>> len(fig.axes) >= 7
    True
    """
    import matplotlib.pyplot as plt

    if hasattr(maps, "compute"):
        maps = maps.compute()
    if names is None:
        names = [n for n in DEFAULT_PANELS if n in maps] or list(maps)
    missing = [n for n in names if n not in maps]
    if missing:
        raise KeyError(f"No map called {missing}; the maps are {list(maps)}.")
    if threshold is None:
        threshold = _ood_threshold(maps)
    first = maps[names[0]]
    ndim = len(first.axes_manager.signal_axes)
    if first.axes_manager.signal_size == 1 or ndim == 0:
        return _plot_values(maps, names)
    if ndim == 1:
        return _plot_profiles(maps, [n for n in names if n != "flags"], panel_size)
    panels = list(names)
    with_composite = composite and "fe3_fraction" in maps
    n_panels = len(panels) + with_composite
    columns = max(1, min(columns, n_panels))
    rows = int(np.ceil(n_panels / columns))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(columns * panel_size * 1.15, rows * panel_size),
        squeeze=False,
        constrained_layout=True,
    )
    flat = axes.ravel()
    for ax, name in zip(flat, panels, strict=False):
        if name == "flags":
            _flags_panel(fig, ax, maps[name])
        else:
            _image_panel(fig, ax, maps[name], name, threshold)
    if with_composite:
        _composite_panel(fig, flat[len(panels)], maps)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    title = first.metadata.get_item("General.title", "")
    source = title.split(" of ", 1)[1] if " of " in title else ""
    image = _image(first)
    n_nan = int(np.count_nonzero(~np.isfinite(image)))
    if n_nan:
        source += (
            f"{' — ' if source else ''}{n_nan} of {image.size} pixels unreadable "
            "(grey; reasons in the flags map)"
        )
    if source:
        fig.suptitle(source)
    return fig


def fe_composite(fe3: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """RGB image: Fe3+ fraction in red, Fe2+ in blue, confidence in brightness.

    Parameters
    ----------
    fe3
        Fe3+ fraction per pixel, 0–1 (NaN drawn black).
    confidence
        0–1 per pixel (1: fully bright); default 1.

    Returns
    -------
    numpy.ndarray
        Shape ``fe3.shape + (3,)``, float in 0–1.

    Examples
    --------
    >>> import numpy as np
    >>> fe_composite(np.array([[0.0, 1.0]]))[0].round(2).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    fe3 = np.clip(np.asarray(fe3, dtype=np.float64), 0.0, 1.0)
    bright = np.ones_like(fe3) if confidence is None else np.clip(confidence, 0, 1)
    rgb = np.stack([fe3, np.zeros_like(fe3), 1.0 - fe3], axis=-1) * bright[..., None]
    return np.nan_to_num(rgb, nan=0.0)


# -- panels ---------------------------------------------------------------------------


def _style(name: str) -> dict[str, Any]:
    if name in STYLES:
        return STYLES[name]
    if name.endswith("_std"):
        base = STYLES.get(name[: -len("_std")], {})
        return {**_STD_STYLE, "label": f"σ of {base.get('label', name[:-4])}"}
    return {"cmap": "viridis", "limits": None, "label": name}


def _extent(signal: BaseSignal) -> tuple[float, float, float, float]:
    ax_x, ax_y = signal.axes_manager.signal_axes[:2]
    half_x = 0.5 * (ax_x.axis[1] - ax_x.axis[0]) if ax_x.size > 1 else 0.5
    half_y = 0.5 * (ax_y.axis[1] - ax_y.axis[0]) if ax_y.size > 1 else 0.5
    return (
        ax_x.axis[0] - half_x,
        ax_x.axis[-1] + half_x,
        ax_y.axis[-1] + half_y,
        ax_y.axis[0] - half_y,
    )


def _axis_label(axis) -> str:
    name = axis.name if isinstance(axis.name, str) else "position"
    units = axis.units if isinstance(axis.units, str) else ""
    return f"{name} ({units})" if units else name


def _image(signal: BaseSignal) -> np.ndarray:
    """The 2-D image of a map (first index along any further axes)."""
    data = np.asarray(signal.data, dtype=np.float64)
    while data.ndim > 2:
        data = data[0]
    return data


def _image_panel(fig, ax, signal: BaseSignal, name: str, threshold) -> None:
    style = _style(name)
    image = _image(signal)
    limits = style["limits"]
    if limits is None:
        finite = image[np.isfinite(image)]
        limits = tuple(np.percentile(finite, [1, 99])) if finite.size else (0.0, 1.0)
        if name == "ood_score" and threshold is not None and np.isfinite(threshold):
            # The threshold stays on the colour bar, with some room above it.
            limits = (min(limits[0], 0.0), max(limits[1], 1.1 * float(threshold)))
        if limits[0] == limits[1]:
            limits = (limits[0] - 0.5, limits[1] + 0.5)
    norm = None
    if name == "valence":
        from matplotlib.colors import TwoSlopeNorm

        norm = TwoSlopeNorm(vcenter=2.5, vmin=limits[0], vmax=limits[1])
        limits = (None, None)
    cmap = _with_nan_colour(style["cmap"])
    im = ax.imshow(
        np.ma.masked_invalid(image),
        extent=_extent(signal),
        cmap=cmap,
        norm=norm,
        vmin=limits[0],
        vmax=limits[1],
        interpolation="nearest",
    )
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(style["label"])
    if name != "ood_score":
        threshold = _test_threshold(signal, name)
    if threshold is not None and np.isfinite(threshold):
        _mark_threshold(bar, float(threshold))
    ax.set_title(style["label"])
    ax_x, ax_y = signal.axes_manager.signal_axes[:2]
    ax.set_xlabel(_axis_label(ax_x))
    ax.set_ylabel(_axis_label(ax_y))


#: Colour of the readable category and of each flag bit.
FLAG_COLOURS: dict[int, str] = {
    0: "#2a9d8f",  # readable
    1: "#000000",  # NaN or inf
    2: "#6c757d",  # all zero
    4: "#e76f51",  # negative counts
    8: "#f4a261",  # saturated
    16: "#adb5bd",  # no edge
    32: "#e9c46a",  # background fallback
    64: "#9b5de5",  # out of distribution
    128: "#264653",  # partial window
    256: "#f15bb5",  # far from the training spectra in the model's features
    512: "#00bbf9",  # no library spectrum explains the shape
    1024: "#fee440",  # spike or glitch
    2048: "#8d99ae",  # metallic iron
    4096: "#ff006e",  # low-spin or Fe4+
    8192: "#a8dadc",  # mostly Fe2+: site symmetry not resolved
}


def _flags_panel(fig, ax, signal: BaseSignal) -> None:
    """The main reason per pixel, as categories; the colour bar names each one shown.

    A pixel with several bits is drawn with its lowest (most serious) one. Only the
    categories present are in the colour bar, each with its colour and its name.
    """
    from matplotlib.colors import ListedColormap

    from hyperspy_fe_ml.kernels.model_inputs import (
        FLAG_NAMES,
        FLAG_OUT_OF_DISTRIBUTION,
    )

    flags = _image(signal).astype(np.int64)
    # The failed out-of-distribution test names the pixel, not the summary bit.
    bits = sorted(FLAG_NAMES, key=lambda b: (b == FLAG_OUT_OF_DISTRIBUTION, b))
    category = np.zeros(flags.shape, dtype=np.int64)
    for k, bit in enumerate(bits):
        category[(category == 0) & ((flags & bit) != 0)] = k + 1
    labels = ["readable"] + [FLAG_NAMES[b] for b in bits]
    present = sorted(set(category.ravel().tolist()))
    # Colours of the categories present only, so every colour has its label.
    index = np.searchsorted(present, category)
    colour_of = [FLAG_COLOURS[0]] + [FLAG_COLOURS.get(b, "#808080") for b in bits]
    cmap = ListedColormap([colour_of[k] for k in present])
    im = ax.imshow(
        index,
        extent=_extent(signal),
        cmap=cmap,
        vmin=-0.5,
        vmax=len(present) - 0.5,
        interpolation="nearest",
    )
    bar = fig.colorbar(im, ax=ax, shrink=0.85, ticks=range(len(present)))
    counts = np.bincount(index.ravel(), minlength=len(present))
    bar.ax.set_yticklabels(
        [f"{_wrap(labels[k])} ({n})" for k, n in zip(present, counts, strict=True)],
        fontsize=7,
    )
    ax.set_title("Quality flags")
    ax_x, ax_y = signal.axes_manager.signal_axes[:2]
    ax.set_xlabel(_axis_label(ax_x))
    ax.set_ylabel(_axis_label(ax_y))


def _wrap(text: str, width: int = 24) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _mark_threshold(bar, threshold: float) -> None:
    """A cyan line at the OOD threshold on a colour bar, named in its label."""
    bar.ax.axhline(threshold, color="cyan", lw=2.0)
    bar.set_label(f"OOD score (cyan: threshold {threshold:.3g})")


def _composite_key(fig, ax) -> None:
    """The key of :func:`fe_composite`: a colour bar from Fe2+ (blue) to Fe3+ (red)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    colours = fe_composite(np.linspace(0.0, 1.0, 256))
    cmap = LinearSegmentedColormap.from_list("fe_composite", colours)
    bar = fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=ax, shrink=0.85
    )
    bar.set_label("Fe³⁺/ΣFe (darker: larger σ)")


def _composite_panel(fig, ax, maps: Mapping[str, BaseSignal]) -> None:
    fe3 = _image(maps["fe3_fraction"])
    confidence = None
    if "fe3_fraction_std" in maps:
        std = _image(maps["fe3_fraction_std"])
        confidence = 1.0 - np.clip(std / 0.25, 0.0, 0.7)
    ax.imshow(
        fe_composite(fe3, confidence),
        extent=_extent(maps["fe3_fraction"]),
        interpolation="nearest",
    )
    _composite_key(fig, ax)
    ax.set_title("Fe²⁺ (blue) / Fe³⁺ (red) composite")
    ax_x, ax_y = maps["fe3_fraction"].axes_manager.signal_axes[:2]
    ax.set_xlabel(_axis_label(ax_x))
    ax.set_ylabel(_axis_label(ax_y))


def _plot_profiles(maps: Mapping[str, BaseSignal], names, panel_size: float):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(names),
        1,
        figsize=(2.2 * panel_size, 0.6 * panel_size * len(names) + 0.5),
        sharex=True,
        squeeze=False,
        constrained_layout=True,
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        signal = maps[name]
        position = signal.axes_manager.signal_axes[0]
        value = np.asarray(signal.data, dtype=np.float64)
        style = _style(name)
        ax.plot(position.axis, value, color="k", lw=1.2)
        if f"{name}_std" in maps:
            std = np.asarray(maps[f"{name}_std"].data, dtype=np.float64)
            ax.fill_between(
                position.axis, value - std, value + std, color="0.75", label="±1 σ"
            )
        if style["limits"] is not None:
            ax.set_ylim(*style["limits"])
        ax.set_ylabel(style["label"])
    axes[-1, 0].set_xlabel(_axis_label(position))
    return fig


def _plot_values(maps: Mapping[str, BaseSignal], names):
    """A single spectrum's results as a table, titled with the spectrum's name."""
    import matplotlib.pyplot as plt

    rows = []
    for name in names:
        if name == "flags":
            rows.append(["quality", _flags_in_words(maps[name])])
            continue
        value = float(np.ravel(maps[name].data)[0])
        std = (
            float(np.ravel(maps[f"{name}_std"].data)[0])
            if f"{name}_std" in maps
            else None
        )
        if not np.isfinite(value):
            text = "NaN (see quality)"
        else:
            text = f"{value:.3f}" + (f" ± {std:.3f}" if std is not None else "")
        if name == "ood_score":
            threshold = _ood_threshold(maps)
            if threshold is not None:
                text += f" (threshold {threshold:.3g})"
        rows.append([_style(name)["label"], text])
    height = 0.4 * len(rows) + 0.4 * sum(r[1].count("\n") for r in rows) + 1.0
    fig, ax = plt.subplots(figsize=(6.0, height))
    ax.axis("off")
    table = ax.table(
        cellText=rows, colLabels=["quantity", "value"], loc="center", cellLoc="left"
    )
    table.auto_set_column_width([0, 1])
    for (row, _), cell in table.get_celld().items():
        lines = rows[row - 1][1].count("\n") + 1 if row else 1
        cell.set_height(cell.get_height() * lines)
    title = maps[names[0]].metadata.get_item("General.title", "")
    source = title.split(" of ", 1)[1] if " of " in title else title
    fig.suptitle(f"Fe state of {source}" if source else "Fe state of one spectrum")
    return fig


def _flags_in_words(signal: BaseSignal) -> str:
    """The flag bits of one pixel, by name ("readable" when none)."""
    from hyperspy_fe_ml.kernels.model_inputs import FLAG_NAMES

    value = int(np.ravel(signal.data)[0])
    names = [name for bit, name in FLAG_NAMES.items() if value & bit]
    return "\n".join(names) if names else "readable"


def _with_nan_colour(name: str):
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    return cmap.with_extremes(bad="0.8")


def _test_threshold(signal: BaseSignal, name: str) -> float | None:
    """Threshold of an out-of-distribution test map, from its provenance."""
    node = "FeL23.provenance.ood_thresholds"
    found = signal.metadata.get_item(node) if signal.metadata.has_item(node) else None
    value = found.get(name) if isinstance(found, dict) else None
    if value is None and found is not None and hasattr(found, "as_dictionary"):
        value = found.as_dictionary().get(name)
    return float(value) if value is not None else None


def _ood_threshold(maps: Mapping[str, BaseSignal]) -> float | None:
    provenance = getattr(maps, "provenance", {}) or {}
    return provenance.get("model", {}).get("ood_threshold")
