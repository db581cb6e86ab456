"""Library reconstruction of model inputs: how well physics explains each spectrum.

Per pixel, the aligned, normalised spectrum the model reads is fitted with the
best non-negative combination of a small basis (library spectra aligned and
normalised exactly as the model reads spectra, continuum steps and a slowly
varying background residual of either sign). Three numbers come out, each
relative to the pixel's own noise, estimated from the channel-to-channel scatter
of the fit's residual (counting and read noise are white at the channel scale;
the spectrum's structure is not, and the fit has removed it):

- ``misfit``: root-mean-square of the residual smoothed over ``smooth``
  channels, over what noise alone and the library's systematic error would leave;
- ``amplitude_snr``: the norm of the library part of the fit over the noise —
  a matched-filter signal-to-noise ratio of the edge (a pure-noise spectrum,
  normalised by a white-line integral that happened to be positive, has none);
- ``spike``: the largest single-channel excursion of the residual from its
  smoothed value, in noise units (X-ray hits, detector glitches).

Pure functions on arrays; they know nothing of HyperSpy, Dask or the model class.
"""

import numpy as np
from numba import njit

#: Fast-math flags (as :mod:`~hyperspy_fe_ml.kernels.model_inputs`): NaN must
#: still propagate.
_FAST = {"reassoc", "contract", "nsz", "arcp"}
#: Mean absolute difference of two independent N(0, s²) values is 2 s / sqrt(pi).
_MAD_TO_SIGMA = 0.886226925452758


@njit(cache=True, nogil=True)
def _cholesky_solve(a: np.ndarray, b: np.ndarray, p: int) -> None:
    """Solve ``a[:p, :p] x = b[:p]`` in place (``a`` overwritten by its Cholesky
    factor, ``b`` by ``x``); no allocation."""
    for j in range(p):
        d = a[j, j]
        for q in range(j):
            d -= a[j, q] * a[j, q]
        d = np.sqrt(max(d, 1e-300))
        a[j, j] = d
        for i in range(j + 1, p):
            v = a[i, j]
            for q in range(j):
                v -= a[i, q] * a[j, q]
            a[i, j] = v / d
    for i in range(p):
        v = b[i]
        for q in range(i):
            v -= a[i, q] * b[q]
        b[i] = v / a[i, i]
    for i in range(p - 1, -1, -1):
        v = b[i]
        for q in range(i + 1, p):
            v -= a[q, i] * b[q]
        b[i] = v / a[i, i]


@njit(cache=True, nogil=True)
def nnls_gram(gram: np.ndarray, rhs: np.ndarray, out: np.ndarray) -> int:
    """Non-negative least squares from the normal equations (Lawson–Hanson).

    Minimises ``|B a - z|²`` over ``a >= 0`` given ``gram = B Bᵀ`` and
    ``rhs = B z`` (so the work per call does not depend on the number of
    channels).

    Parameters
    ----------
    gram
        Shape ``(k, k)``, symmetric positive definite.
    rhs
        Shape ``(k,)``.
    out
        Shape ``(k,)``, overwritten with the solution.

    Returns
    -------
    int
        Number of outer iterations (``-1``: stopped at the limit).

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> a = np.zeros(2)
    >>> _ = nnls_gram(b @ b.T, b @ np.array([2.0, -1.0, 0.0]), a)
    >>> a.tolist()
    [2.0, 0.0]
    """
    k = rhs.size
    passive = np.zeros(k, dtype=np.bool_)
    for i in range(k):
        out[i] = 0.0
    s = np.zeros(k)
    sub = np.empty((k, k))
    vec = np.empty(k)
    index = np.empty(k, dtype=np.int64)
    tol = 1e-12 * max(np.abs(rhs).max(), 1e-300)
    for outer in range(3 * k):
        # Gradient of -|B a - z|²/2: w = rhs - gram a.
        best = -1
        best_w = tol
        # Only the non-zero coefficients contribute to gram @ out.
        p = 0
        for j in range(k):
            if out[j] != 0.0:
                index[p] = j
                p += 1
        for i in range(k):
            if passive[i]:
                continue
            w = rhs[i]
            for q in range(p):
                w -= gram[i, index[q]] * out[index[q]]
            if w > best_w:
                best_w = w
                best = i
        if best < 0:
            return outer
        passive[best] = True
        for _inner in range(3 * k):
            p = 0
            for i in range(k):
                if passive[i]:
                    index[p] = i
                    p += 1
            for a in range(p):
                vec[a] = rhs[index[a]]
                for b in range(p):
                    sub[a, b] = gram[index[a], index[b]]
            _cholesky_solve(sub, vec, p)
            for i in range(k):
                s[i] = 0.0
            feasible = True
            for a in range(p):
                s[index[a]] = vec[a]
                if vec[a] <= 0.0:
                    feasible = False
            if feasible:
                for i in range(k):
                    out[i] = s[i]
                break
            alpha = 1.0
            for i in range(k):
                if passive[i] and s[i] <= 0.0:
                    step = out[i] / (out[i] - s[i])
                    alpha = min(alpha, step)
            for i in range(k):
                out[i] += alpha * (s[i] - out[i])
                if passive[i] and out[i] <= 1e-15:
                    passive[i] = False
                    out[i] = 0.0
    return -1


@njit(cache=True, nogil=True, fastmath=_FAST)
def reconstruction_scores(
    inputs: np.ndarray,
    readable: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    basis: np.ndarray,
    gram: np.ndarray,
    n_library: int,
    smooth: int,
    systematic: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Misfit, amplitude signal-to-noise and spike score of each model input.

    Parameters
    ----------
    inputs
        Standardised model inputs, shape ``(n, m)`` (float32 or float64), as
        :func:`~hyperspy_fe_ml.kernels.model_inputs.prepare_model_inputs` returns
        them: the aligned, normalised spectrum is ``inputs * scale + mean``.
    readable
        Shape ``(n,)``, bool: rows to score (others are NaN).
    mean, scale
        The model's per-channel standardisation, shape ``(m,)``.
    basis
        Shape ``(k, m)``: the first ``n_library`` rows are library spectra aligned
        and normalised as the model reads spectra (non-negative coefficients);
        the rest are steps and background terms.
    gram
        ``basis @ basis.T`` (with a tiny ridge), shape ``(k, k)``.
    n_library
        Number of library rows at the top of ``basis``.
    smooth
        Width of the boxcar that smooths the residual, channels (odd).
    systematic
        Residual, per channel in normalised units, that the library's own error
        leaves on a noise-free spectrum.

    Returns
    -------
    misfit, amplitude_snr, spike
        Shape ``(n,)`` each, float64 (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(300.0)
    >>> basis = np.stack([np.exp(-0.5 * ((g - 90) / 5) ** 2), np.ones(300) * 0.1])
    >>> z = np.stack([2 * basis[0], np.exp(-0.5 * ((g - 150) / 5) ** 2)])
    >>> z += np.random.default_rng(0).normal(0, 0.01, z.shape)
    >>> misfit, snr, spike = reconstruction_scores(
    ...     z, np.ones(2, bool), np.zeros(300), np.ones(300), basis,
    ...     basis @ basis.T, 1, 5, 0.0)
    >>> bool(misfit[0] < 2 < misfit[1]), bool(snr[0] > 100)
    (True, True)
    """
    n, m = inputs.shape
    k = basis.shape[0]
    misfit = np.full(n, np.nan)
    amplitude = np.full(n, np.nan)
    spike = np.full(n, np.nan)
    z = np.empty(m)
    r = np.empty(m)
    rhs = np.empty(k)
    coef = np.empty(k)
    half = smooth // 2
    for p in range(n):
        if not readable[p]:
            continue
        ok = True
        for c in range(m):
            z[c] = inputs[p, c] * scale[c] + mean[c]
            if not np.isfinite(z[c]):
                ok = False
        if not ok:
            continue
        for i in range(k):
            total = 0.0
            for c in range(m):
                total += basis[i, c] * z[c]
            rhs[i] = total
        nnls_gram(gram, rhs, coef)
        for c in range(m):
            r[c] = z[c]
        for i in range(k):
            a = coef[i]
            if a != 0.0:
                for c in range(m):
                    r[c] -= a * basis[i, c]
        # Library part of the fit: |L|² = aᵀ G a over the library rows.
        lib2 = 0.0
        for i in range(n_library):
            if coef[i] != 0.0:
                for j in range(n_library):
                    lib2 += coef[i] * gram[i, j] * coef[j]
        mad = 0.0
        for c in range(1, m):
            mad += abs(r[c] - r[c - 1])
        sigma = _MAD_TO_SIGMA * mad / (m - 1)
        # Smoothed residual (boxcar, shrinking at the ends) and the largest
        # excursion from it.
        total2 = 0.0
        worst = 0.0
        acc = 0.0
        for j in range(min(half, m)):
            acc += r[j]
        for c in range(m):
            if c + half < m:
                acc += r[c + half]
            if c - half - 1 >= 0:
                acc -= r[c - half - 1]
            smoothed = acc / (min(c + half + 1, m) - max(c - half, 0))
            total2 += smoothed * smoothed
            worst = max(worst, abs(r[c] - smoothed))
        expected = sigma * sigma / smooth + systematic * systematic
        misfit[p] = np.sqrt(total2 / m / expected) if expected > 0 else np.inf
        noise = max(sigma, 1e-300)
        amplitude[p] = np.sqrt(max(lib2, 0.0)) / noise
        spike[p] = worst / np.sqrt(sigma * sigma + systematic * systematic)
    return misfit, amplitude, spike
