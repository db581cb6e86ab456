"""Experimental standards: CSV with '# key: value' label headers, and EMSA/MSA."""

import numpy as np
import pytest

from hyperspy_fe_ml.library.standards import read_standard, read_standards_dir

# A non-uniform grid, written out of order to check sorting.
ENERGY = np.array([700.0, 705.0, 707.5, 708.0, 708.25, 710.0, 721.0, 730.0])
INTENSITY = np.array([0.01, 0.05, 0.6, 1.0, 0.9, 0.4, 0.35, 0.1])


def _write_csv(path, header, energy=ENERGY, intensity=INTENSITY, column="energy_eV"):
    lines = [f"# {k}: {v}" for k, v in header.items()]
    lines.append(f"{column},intensity")
    lines += [f"{e:.10g},{i:g}" for e, i in zip(energy, intensity, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = {
    "compound": "FeAl2O4",
    "valence": "2.0",
    "td_fraction": "1.0",
    "technique": "EELS",
    "source": "made up for the test",
}


def test_csv_labels_and_values(tmp_path):
    order = [3, 0, 7, 1, 5, 2, 6, 4]
    path = _write_csv(tmp_path / "spinel.csv", HEADER, ENERGY[order], INTENSITY[order])
    rec = read_standard(path)
    np.testing.assert_array_equal(rec.energy, ENERGY)
    np.testing.assert_array_equal(rec.intensity, INTENSITY)
    assert (rec.valence, rec.td_fraction, rec.coordination_number) == (2.0, 1.0, None)
    assert rec.identifier == "FeAl2O4" and rec.source == "experiment"
    assert rec.metadata["technique"] == "EELS"
    assert rec.metadata["header"]["source"] == "made up for the test"
    assert rec.metadata["label_sources"]["valence"] == "file header 'valence'"
    assert not rec.is_uniform


def test_csv_keyword_labels_win_and_kev(tmp_path):
    header = dict(HEADER, valence="unknown", coordination_number="4")
    path = _write_csv(
        tmp_path / "x.csv", header, ENERGY / 1000, INTENSITY, column="energy_keV"
    )
    rec = read_standard(path, valence=2.5, td_fraction=0.5)
    np.testing.assert_allclose(rec.energy, ENERGY)
    assert (rec.valence, rec.td_fraction, rec.coordination_number) == (2.5, 0.5, 4.0)
    assert rec.metadata["label_sources"]["valence"] == "keyword argument"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# valence: 2\n700,1\n701,2\n", "data before the column header row"),
        ("# valence: 2\nenergy_eV,intensity\n700,1\n701,abc\n", "line 4: non-numeric"),
        ("# valence: two\nenergy_eV,intensity\n700,1\n701,2\n", "'valence' header"),
        ("wavelength,intensity\n700,1\n701,2\n", "not an energy"),
        ("energy_eV,intensity\n700,1\n701,nan\n", "non-finite"),
        ("energy_eV,intensity\n700,1\n700,2\n", "repeated value"),
        ("energy_eV,intensity\n700,1\n701\n", "1 values where the header has 2"),
        ("# valence: 2\n", "no spectrum data found"),
    ],
)
def test_csv_errors_name_file_problem_and_fix(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_standard(path)
    assert str(path) in str(info.value)


def _write_msa(path, title, offset=700.0, scale=0.5, data=INTENSITY, units="eV"):
    """A minimal EMSA/MAS 1.0 file, as the EELS Data Base distributes them."""
    head = {
        "FORMAT": "EMSA/MAS Spectral Data File",
        "VERSION": "1.0",
        "TITLE": title,
        "DATE": "",
        "TIME": "",
        "OWNER": "test",
        "NPOINTS": f"{len(data)}",
        "NCOLUMNS": "1",
        "XUNITS": units,
        "YUNITS": "",
        "DATATYPE": "XY",
        "XPERCHAN": f"{scale}",
        "OFFSET": f"{offset}",
        "SIGNALTYPE": "ELS",
    }
    lines = [f"#{k:<12}: {v}" for k, v in head.items()]
    lines.append("#SPECTRUM    : Spectral Data Starts Here")
    lines += [f"{offset + i * scale:.6e}, {d:.6e}" for i, d in enumerate(data)]
    lines.append("#ENDOFDATA   : End Of Data and File")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_msa_labels_from_title_text(tmp_path):
    path = _write_msa(tmp_path / "a.msa", "FeO_ref valence: 2 cn=6")
    text = path.read_text().replace(
        "#SPECTRUM", "#COMMENT     : td_fraction=0\n#SPECTRUM"
    )
    path.write_text(text)
    rec = read_standard(path)
    np.testing.assert_allclose(rec.energy, 700.0 + 0.5 * np.arange(8))
    np.testing.assert_allclose(rec.intensity, INTENSITY, rtol=1e-6)
    assert (rec.valence, rec.coordination_number, rec.td_fraction) == (2.0, 6.0, 0.0)
    assert rec.is_uniform and rec.metadata["format"] == "msa"


@pytest.mark.parametrize(
    ("title", "valence"),
    [
        ("Fe2O3_Fe_L3_Qiang_Xu_141", 3.0),
        ("magnetite Fe3O4 L23", 8 / 3),
        ("goethite FeOOH", 3.0),
        ("FeTiO3 ilmenite", None),  # not an Fe-O(-H) formula: no guess
        ("unknown sample", None),
    ],
)
def test_msa_valence_from_iron_oxide_formula(tmp_path, title, valence):
    rec = read_standard(_write_msa(tmp_path / "b.msa", title))
    assert rec.valence == (None if valence is None else pytest.approx(valence))
    assert rec.coordination_number is None and rec.td_fraction is None
    assert rec.identifier == title


def test_msa_keywords_win_and_units(tmp_path):
    path = _write_msa(
        tmp_path / "c.ems", "Fe2O3", offset=0.7, scale=0.0005, units="keV"
    )
    rec = read_standard(path, valence=2.0, td_fraction=0.0)
    np.testing.assert_allclose(rec.energy, 700.0 + 0.5 * np.arange(8))
    assert (rec.valence, rec.td_fraction) == (2.0, 0.0)
    bad = _write_msa(tmp_path / "d.msa", "Fe2O3", units="nm")
    with pytest.raises(ValueError, match=r"d.msa: energy axis in 'nm'"):
        read_standard(bad)


def test_read_standards_dir_sorted_and_errors(tmp_path):
    _write_csv(tmp_path / "b_fe3.csv", dict(HEADER, compound="B", valence=3))
    _write_csv(tmp_path / "a_fe2.csv", dict(HEADER, compound="A"))
    _write_msa(tmp_path / "c.msa", "Fe2O3")
    (tmp_path / "README.md").write_text("not a standard")
    records = read_standards_dir(tmp_path)
    assert [r.identifier for r in records] == ["A", "B", "Fe2O3"]
    assert [r.valence for r in records] == [2.0, 3.0, 3.0]

    (tmp_path / "d_bad.csv").write_text("energy_eV,intensity\n700,1\n")
    with pytest.raises(ValueError, match="d_bad.csv"):
        read_standards_dir(tmp_path)
    with pytest.warns(UserWarning, match="d_bad.csv.*Skipped"):
        assert len(read_standards_dir(tmp_path, on_error="warn")) == 3

    with pytest.raises(ValueError, match="no standards found"):
        read_standards_dir(_empty(tmp_path))
    with pytest.raises(ValueError, match="unknown standard format '.md'"):
        read_standard(tmp_path / "README.md")


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_standards_folder_from_the_environment_or_beside_a_parent(
    tmp_path, monkeypatch
):
    from hyperspy_fe_ml.library.standards import find_standards_dir

    expdata = tmp_path / "shared" / "expdata"
    expdata.mkdir(parents=True)
    deep = tmp_path / "main" / "examples"
    deep.mkdir(parents=True)
    monkeypatch.delenv("FE_ML_EXPDATA", raising=False)
    assert find_standards_dir(deep) == expdata.resolve()
    monkeypatch.chdir(deep)
    assert find_standards_dir() == expdata.resolve()
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.setenv("FE_ML_EXPDATA", str(elsewhere))
    assert find_standards_dir(deep) == elsewhere  # the variable wins
    monkeypatch.setenv("FE_ML_EXPDATA", str(tmp_path / "missing"))
    assert find_standards_dir(deep) is None  # an empty place turns them off
