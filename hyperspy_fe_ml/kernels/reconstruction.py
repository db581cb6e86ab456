"""Library reconstruction of model inputs: how well physics explains each spectrum.

Per pixel, the aligned, normalised spectrum the model reads is fitted with a small
basis: either its projection on orthonormal rows spanning the library
(:func:`projection_scores`, cheap enough for every pixel of a map), or the best
non-negative combination of library spectra aligned and normalised exactly as
the model reads spectra (:func:`reconstruction_scores`, iterative), each with
continuum steps and a slowly varying background residual of either sign. Three
numbers come out, each
relative to the pixel's own noise, estimated from the channel-to-channel scatter
of the fit's residual (counting and read noise are white at the channel scale;
the spectrum's structure is not, and the fit has removed it):

- ``misfit``: root-mean-square of the residual smoothed over
  :data:`BOXCAR_CHANNELS` channels (0.5 eV on the model's 0.1 eV grid: narrower
  than any white line, wider than a channel), over what noise alone and the
  library's systematic error would leave;
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
#: Width of the boxcar that smooths a residual before its misfit, channels.
BOXCAR_CHANNELS = 5
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
def _residual_scores(r: np.ndarray, systematic: float) -> tuple[float, float, float]:
    """Misfit, noise and spike score of one fit residual ``r``.

    The noise is the channel-to-channel scatter of the residual (counting and
    read noise are white at the channel scale; the structure was fitted away);
    the misfit is the root-mean-square of the residual smoothed by a
    :data:`BOXCAR_CHANNELS` boxcar (shrinking at the ends) over what noise alone
    and the ``systematic`` floor would leave; the spike score is the largest
    excursion from the smoothed residual over the noise. The loops are written
    so that they vectorise (the boxcar spelt out into an array of its own, four
    running maxima), in single precision (``r`` is float32).
    """
    m = r.size
    f0 = np.float32(0.0)
    fifth = np.float32(0.2)
    sm = np.empty(m, dtype=np.float32)
    mad = f0
    for c in range(1, m):
        mad += abs(r[c] - r[c - 1])
    # The boxcar of BOXCAR_CHANNELS = 5, spelt out.
    for c in range(2, m - 2):
        sm[c] = (r[c - 2] + r[c - 1] + r[c] + r[c + 1] + r[c + 2]) * fifth
    # Ends: the boxcar shrinks.
    sm[0] = (r[0] + r[1] + r[2]) / np.float32(3.0)
    sm[1] = (r[0] + r[1] + r[2] + r[3]) / np.float32(4.0)
    sm[m - 2] = (r[m - 4] + r[m - 3] + r[m - 2] + r[m - 1]) / np.float32(4.0)
    sm[m - 1] = (r[m - 3] + r[m - 2] + r[m - 1]) / np.float32(3.0)
    total2 = f0
    for c in range(m):
        total2 += sm[c] * sm[c]
    w0 = w1 = w2 = w3 = f0
    c = 0
    while c + 4 <= m:
        w0 = max(w0, abs(r[c] - sm[c]))
        w1 = max(w1, abs(r[c + 1] - sm[c + 1]))
        w2 = max(w2, abs(r[c + 2] - sm[c + 2]))
        w3 = max(w3, abs(r[c + 3] - sm[c + 3]))
        c += 4
    while c < m:
        w0 = max(w0, abs(r[c] - sm[c]))
        c += 1
    sigma = _MAD_TO_SIGMA * float(mad) / (m - 1)
    floor2 = systematic * systematic
    expected = sigma * sigma / BOXCAR_CHANNELS + floor2
    misfit = np.sqrt(float(total2) / m / expected) if expected > 0 else np.inf
    worst = float(max(max(w0, w1), max(w2, w3)))
    return misfit, sigma, worst / np.sqrt(sigma * sigma + floor2)


@njit(cache=True, nogil=True, fastmath=_FAST)
def projection_scores(
    inputs: np.ndarray,
    readable: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    basis: np.ndarray,
    n_signal: int,
    systematic: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Misfit, amplitude signal-to-noise and spike score of a linear fit.

    The least-squares fit on an orthonormal basis is a projection: coefficients
    ``a = basis @ z``, residual ``z - aᵀ basis``, about ``4 k m`` operations per
    spectrum (the non-negative fit of :func:`reconstruction_scores` iterates).

    Parameters
    ----------
    inputs, readable, mean, scale
        As for :func:`reconstruction_scores`.
    basis
        Shape ``(k, m)``, orthonormal rows; the first ``n_signal`` span the edge
        (their coefficients make the amplitude), the rest continuum and
        background terms.
    n_signal
        Rows of ``basis`` that span the edge.
    systematic
        As for :func:`reconstruction_scores`.

    Returns
    -------
    misfit, amplitude_snr, spike
        Shape ``(n,)`` each, float64.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(300.0)
    >>> q = np.stack([np.exp(-0.5 * ((g - 90) / 5) ** 2), np.ones(300)])
    >>> q = np.linalg.qr(q.T)[0].T
    >>> z = np.stack([3 * q[0], np.exp(-0.5 * ((g - 150) / 5) ** 2)])
    >>> z += np.random.default_rng(0).normal(0, 0.01, z.shape)
    >>> misfit, snr, spike = projection_scores(
    ...     z, np.ones(2, bool), np.zeros(300), np.ones(300), q, 1, 0.0)
    >>> bool(misfit[0] < 2 < misfit[1]), bool(snr[0] > 100)
    (True, True)
    """
    n, m = inputs.shape
    k = basis.shape[0]
    misfit = np.full(n, np.nan)
    amplitude = np.full(n, np.nan)
    spike = np.full(n, np.nan)
    # Single precision throughout (the inputs are float32 already; scores agree
    # with double precision to ~1e-5), every loop over local arrays so that it
    # vectorises: the 5-channel boxcar spelt out, four running maxima.
    q = basis.astype(np.float32)
    scale32 = scale.astype(np.float32)
    mean32 = mean.astype(np.float32)
    z = np.empty(m, dtype=np.float32)
    r = np.empty(m, dtype=np.float32)
    coef = np.empty(k, dtype=np.float32)
    f0 = np.float32(0.0)
    for p in range(n):
        if not readable[p]:
            continue
        check = f0
        for c in range(m):
            z[c] = inputs[p, c] * scale32[c] + mean32[c]
            check += z[c] * f0  # NaN or inf anywhere stays
        if not np.isfinite(check):
            continue
        signal2 = 0.0
        for i in range(k):
            total = f0
            for c in range(m):
                total += q[i, c] * z[c]
            coef[i] = total
            if i < n_signal:
                signal2 += float(total) * float(total)
        for c in range(m):
            r[c] = z[c]
        for i in range(k):
            a = coef[i]
            for c in range(m):
                r[c] -= a * q[i, c]
        misfit[p], sigma, spike[p] = _residual_scores(r, systematic)
        amplitude[p] = np.sqrt(signal2) / max(sigma, 1e-300)
    return misfit, amplitude, spike


@njit(cache=True, nogil=True, fastmath=_FAST)
def reconstruction_scores(
    inputs: np.ndarray,
    readable: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    basis: np.ndarray,
    gram: np.ndarray,
    n_library: int,
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
    ...     basis @ basis.T, 1, 0.0)
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
    r32 = np.empty(m, dtype=np.float32)
    rhs = np.empty(k)
    coef = np.empty(k)
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
        for c in range(m):
            r32[c] = r[c]
        misfit[p], sigma, spike[p] = _residual_scores(r32, systematic)
        amplitude[p] = np.sqrt(max(lib2, 0.0)) / max(sigma, 1e-300)
    return misfit, amplitude, spike
