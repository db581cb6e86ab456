"""Quanty Print tables and Crispy .spec files."""

import numpy as np
import pytest

from hyperspy_fe_ml.library.quanty import read_quanty_spectrum, read_quanty_table

ENERGY = np.linspace(-10.0, 20.0, 61)


def _lorentzian_g(centre, weight, gamma=0.5):
    """Green's function of one level: G = w / (E - E0 + i Γ/2); Im G < 0."""
    return weight / (ENERGY - centre + 0.5j * gamma)


def _write_quanty(path, spectra, header=None):
    """Write energy, then Re/Im of each spectrum, after five header lines.

    The header content is an assumption (Crispy skips exactly five lines); the
    reader must not depend on it, so it mixes text and lone numbers.
    """
    header = header or [
        "# Quanty spectra file",
        f"# {len(spectra)}",
        "# NE 60  Emin -10  Emax 20",
        "   61",
        "# Energy  Re[G_1]  Im[G_1] ...",
    ]
    columns = [ENERGY]
    for g in spectra:
        columns += [g.real, g.imag]
    table = np.column_stack(columns)
    body = "\n".join(" ".join(f"{v: .10e}" for v in row) for row in table)
    path.write_text("\n".join(header) + "\n" + body + "\n")


def test_quanty_green_function_three_spectra(tmp_path):
    gx, gy, gz = (_lorentzian_g(0.0, 1.0), _lorentzian_g(2.0, 0.5), _lorentzian_g(5, 2))
    path = tmp_path / "Fe2_Oh.dat"
    _write_quanty(path, [gx, gy, gz])
    assert read_quanty_table(path).shape == (61, 7)

    rec = read_quanty_spectrum(
        path, spectrum=1, energy_shift=708.0, valence=2, coordination_number=6
    )
    np.testing.assert_allclose(rec.energy, ENERGY + 708.0)
    np.testing.assert_allclose(rec.intensity, -gy.imag / np.pi, rtol=1e-9)
    assert rec.intensity.min() > 0
    assert rec.energy[np.argmax(rec.intensity)] == pytest.approx(710.0)
    assert rec.metadata["convention"] == "green"
    assert (rec.valence, rec.coordination_number, rec.td_fraction) == (2.0, 6.0, None)
    assert rec.source == "quanty" and rec.identifier == "Fe2_Oh"

    mean = read_quanty_spectrum(path, spectrum="mean")
    np.testing.assert_allclose(
        mean.intensity, -(gx.imag + gy.imag + gz.imag) / 3 / np.pi, rtol=1e-9
    )


def test_quanty_needs_a_choice_among_several_spectra(tmp_path):
    path = tmp_path / "g.dat"
    _write_quanty(path, [_lorentzian_g(0, 1), _lorentzian_g(1, 1)])
    with pytest.raises(ValueError, match="holds 2 spectra"):
        read_quanty_spectrum(path)
    with pytest.raises(ValueError, match="out of range"):
        read_quanty_spectrum(path, spectrum=2)


def test_crispy_spec_already_scaled(tmp_path):
    """Crispy prints -G/π: absorption is the positive imaginary column."""
    g = -_lorentzian_g(3.0, 1.0) / np.pi
    path = tmp_path / "Fe3_Td_iso.spec"
    _write_quanty(path, [g])
    rec = read_quanty_spectrum(path, td_fraction=1.0, valence=3)
    assert rec.metadata["convention"] == "absorption"
    np.testing.assert_allclose(rec.intensity, g.imag, rtol=1e-9)
    assert rec.td_fraction == 1.0
    # Forcing the other convention flips the sign and scales by 1/π.
    forced = read_quanty_spectrum(path, convention="green")
    np.testing.assert_allclose(forced.intensity, -g.imag / np.pi, rtol=1e-9)


def test_two_column_export_and_footer(tmp_path):
    intensity = np.exp(-0.5 * ENERGY**2)
    rows = "\n".join(f"{e},{i:.12g}" for e, i in zip(ENERGY, intensity, strict=True))
    path = tmp_path / "export.spec"
    path.write_text(f"Energy,Intensity\n{rows}\n# end of data\n")
    rec = read_quanty_spectrum(path, energy_shift=700)
    np.testing.assert_allclose(rec.energy, ENERGY + 700)
    np.testing.assert_allclose(rec.intensity, intensity, rtol=1e-10)
    assert rec.metadata["layout"] == "energy, intensity"


def test_skiprows_override_and_bad_files(tmp_path):
    path = tmp_path / "g.dat"
    _write_quanty(path, [_lorentzian_g(0, 1)])
    assert read_quanty_table(path, skiprows=5).shape == (61, 3)
    with pytest.raises(ValueError, match="line 4 is not a row"):
        read_quanty_table(path, skiprows=3)

    four = tmp_path / "four.dat"
    four.write_text("E a b c\n1 2 3 4\n2 3 4 5\n")
    with pytest.raises(ValueError, match="has 4 columns"):
        read_quanty_spectrum(four)

    empty = tmp_path / "empty.dat"
    empty.write_text("no numbers here\n")
    with pytest.raises(ValueError, match="no table of spectrum values"):
        read_quanty_spectrum(empty)
