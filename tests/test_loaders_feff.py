"""Materials Project / FEFF loaders: pymatgen XAS dicts, emmet XASDoc, bulk ndjson."""

import gzip
import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from hyperspy_fe_ml.library import feff
from hyperspy_fe_ml.library.feff import (
    iter_l_edge_database,
    normalise_edge,
    read_pymatgen_xas,
    read_xasdoc,
    stitch_l23,
)

# Synthetic FEFF-like edges: a white line on an arctan step. L3 at 708 eV, L2 at
# 721 eV with half the weight (FEFF's statistical 2:1 branching).
L3_E = np.arange(700.0, 760.0 + 1e-9, 0.25)
L2_E = np.arange(713.0, 773.0 + 1e-9, 0.25)


def _edge(energy, centre, height):
    peak = height * np.exp(-0.5 * ((energy - centre) / 0.8) ** 2)
    step = height / 3 * (0.5 + np.arctan((energy - centre) / 0.5) / np.pi)
    return peak + step


L3_MU = _edge(L3_E, 708.0, 3.0)
L2_MU = _edge(L2_E, 721.0, 1.5)


def _feo_dict():
    """Rocksalt FeO (a = 4.33 Å), conventional cell, as a pymatgen Structure dict."""
    a = 4.33
    fe = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    o = [[0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    sites = [
        {
            "species": [{"element": el, "occu": 1}],
            "abc": abc,
            "xyz": [a * x for x in abc],
            "label": el,
            "properties": {},
        }
        for el, coords in (("Fe", fe), ("O", o))
        for abc in coords
    ]
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {"matrix": [[a, 0, 0], [0, a, 0], [0, 0, a]], "pbc": [True] * 3},
        "properties": {},
        "sites": sites,
    }


def _monty_array(values):
    return {
        "@module": "numpy",
        "@class": "array",
        "dtype": "float64",
        "data": list(values),
    }


def _xas_dict(energy, mu, edge, structure=None, index=None):
    return {
        "@module": "pymatgen.analysis.xas.spectrum",
        "@class": "XAS",
        "x": _monty_array(energy),
        "y": _monty_array(mu),
        "structure": structure,
        "absorbing_element": {"@class": "Element", "element": "Fe"},
        "edge": edge,
        "spectrum_type": "XANES",
        "absorbing_index": index,
    }


def _check_stitched(energy, mu):
    """Both edges kept, L3 first, energies increasing, values add up."""
    assert np.all(np.diff(energy) > 0)
    assert energy[0] == pytest.approx(700.0) and energy[-1] == pytest.approx(760.0)
    assert energy.size == feff.STITCH_SAMPLES
    l3_peak = energy[np.argmax(mu)]
    above = energy > 715
    l2_peak = energy[above][np.argmax(mu[above])]
    # (the rising step moves each maximum up by ~0.2 eV)
    assert l3_peak == pytest.approx(708.2, abs=0.15)
    assert l2_peak == pytest.approx(721.2, abs=0.15)
    # Below the L2 onset only L3 contributes; at 721 eV both do.
    before = energy < 712
    np.testing.assert_allclose(mu[before], _edge(energy[before], 708.0, 3.0), atol=0.02)
    at_l2 = np.argmin(abs(energy - 721.0))
    expected = _edge(energy[at_l2], 708.0, 3.0) + _edge(energy[at_l2], 721.0, 1.5)
    assert mu[at_l2] == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("L2,3", "L23"), ("L23", "L23"), ("L2_3", "L23"), ("l3", "L3"), ("L2", "L2")],
)
def test_normalise_edge(name, expected):
    assert normalise_edge(name) == expected


def test_normalise_edge_rejects_k():
    with pytest.raises(ValueError, match="only Fe L2,3"):
        normalise_edge("K")


def test_numpy_stitch_keeps_both_edges():
    energy, mu = stitch_l23(L3_E[::-1], L3_MU[::-1], L2_E, L2_MU)  # order-agnostic
    _check_stitched(energy, mu)


def test_read_pymatgen_xas_json_l23(tmp_path):
    path = tmp_path / "xas.json"
    path.write_text(json.dumps(_xas_dict(L3_E, L3_MU, "L23", _feo_dict(), 0)))
    rec = read_pymatgen_xas(path, label=False)
    np.testing.assert_array_equal(rec.energy, L3_E)
    np.testing.assert_array_equal(rec.intensity, L3_MU)
    assert rec.source == "feff"
    assert rec.metadata["absorbing_index"] == 0
    assert rec.metadata["file"] == str(path)
    assert rec.labels == {
        "valence": None,
        "coordination_number": None,
        "td_fraction": None,
    }


def test_read_pymatgen_xas_stitches_partner():
    l3 = _xas_dict(L3_E, L3_MU, "L3", None, 0)
    l2 = _xas_dict(L2_E, L2_MU, "L2", None, 0)
    rec = read_pymatgen_xas(l2, partner=l3, label=False, stitch_method="numpy")
    _check_stitched(rec.energy, rec.intensity)
    assert rec.metadata["edge"] == "L2,3 stitched from L2 and L3"


def test_read_pymatgen_xas_single_edge_needs_partner():
    with pytest.raises(ValueError, match="needs its L2 partner"):
        read_pymatgen_xas(_xas_dict(L3_E, L3_MU, "L3"), label=False)


def _doc(edge, energy, mu, material="mp-18905", element="Fe", index=None):
    return {
        "spectrum_name": "XAS",
        "material_id": material,
        "spectrum_id": f"{material}-XANES-{element}-{edge}",
        "absorbing_element": element,
        "spectrum_type": "XANES",
        "edge": edge,
        "spectrum": _xas_dict(energy, mu, edge, _feo_dict(), index),
        "formula_pretty": "FeO",
    }


@pytest.mark.parametrize("edge", ["L2,3", "L23", "L2_3"])
def test_read_xasdoc_l23_spellings(tmp_path, edge):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps({"data": [_doc(edge, L3_E, L3_MU)]}))
    (rec,) = read_xasdoc(path, label=False)
    np.testing.assert_array_equal(rec.intensity, L3_MU)
    assert rec.identifier == f"mp-18905-XANES-Fe-{edge}"
    assert rec.metadata["material_id"] == "mp-18905"


def test_read_xasdoc_stitches_l2_l3_pair():
    docs = [
        _doc("L2,3", L3_E, 2 * L3_MU, material="mp-1"),
        _doc("L2", L2_E, L2_MU),
        _doc("L3", L3_E, L3_MU),
    ]
    records = read_xasdoc(docs, label=False, stitch_method="numpy")
    assert [r.identifier for r in records] == [
        "mp-1-XANES-Fe-L2,3",
        "mp-18905-XANES-Fe-L23",
    ]
    _check_stitched(records[1].energy, records[1].intensity)
    np.testing.assert_array_equal(records[0].intensity, 2 * L3_MU)


def test_read_xasdoc_prefers_served_l23_over_pair():
    docs = [
        _doc("L2", L2_E, L2_MU),
        _doc("L2,3", L3_E, 2 * L3_MU),
        _doc("L3", L3_E, L3_MU),
    ]
    (rec,) = read_xasdoc(docs, label=False)
    np.testing.assert_array_equal(rec.intensity, 2 * L3_MU)


def test_read_xasdoc_errors():
    with pytest.raises(ValueError, match="no L3 partner"):
        read_xasdoc([_doc("L2", L2_E, L2_MU)], label=False)
    with pytest.raises(ValueError, match="is for Mn, not Fe"):
        read_xasdoc(_doc("L2,3", L3_E, L3_MU, element="Mn"), label=False)
    with pytest.raises(ValueError, match="unsupported absorption edge 'K'"):
        read_xasdoc(_doc("K", L3_E, L3_MU), label=False)


def _bulk_record(mp_id, edge, energy, mu, site=0, structure=None):
    return {
        "mp-id": mp_id,
        "name": f"{mp_id}-{site}-{edge}",
        "absorbing_atom": site,
        "edge": edge,
        "structure": structure or _feo_dict(),
        "spectrum": [list(energy), list(mu)],
    }


def _bulk_lines():
    mn = _feo_dict()
    mn["sites"][0]["species"] = [{"element": "Mn", "occu": 1}]
    return [
        json.dumps(_bulk_record("mp-18905", "L3", L3_E, L3_MU)),
        json.dumps(_bulk_record("mp-19006", "L3", L3_E, L3_MU, structure=mn)),  # Mn
        json.dumps(_bulk_record("mp-99", "L2", L2_E, L2_MU)),  # never paired
        "",
        json.dumps(_bulk_record("mp-18905", "L2", L2_E, L2_MU)),
    ]


def test_iter_l_edge_database_gz(tmp_path):
    path = tmp_path / "Fe-L.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(_bulk_lines()) + "\n")
    with pytest.warns(UserWarning, match="1 L2/L3 record"):
        records = list(iter_l_edge_database(path, label=False, stitch_method="numpy"))
    assert [r.identifier for r in records] == ["mp-18905-XANES-Fe-L23-site0"]
    rec = records[0]
    _check_stitched(rec.energy, rec.intensity)
    energy, mu = stitch_l23(L3_E, L3_MU, L2_E, L2_MU)
    np.testing.assert_allclose(rec.intensity, mu)
    assert rec.metadata["calculation"] == "mp-18905-0-L3"


def test_iter_l_edge_database_tgz_and_bad_lines(tmp_path):
    lines = _bulk_lines()
    lines.insert(1, "{not json")
    payload = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "L-XAS.json.tgz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("L-XAS.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    with pytest.warns(UserWarning) as caught:
        records = list(iter_l_edge_database(path, label=False, stitch_method="numpy"))
    assert len(records) == 1
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "L-XAS.json line 2: not valid JSON" in messages[0]
    assert "1 L2/L3 record(s) without their partner edge" in messages[1]
    with pytest.raises(ValueError, match=r"L-XAS.json line 2: not valid JSON"):
        list(iter_l_edge_database(path, label=False, on_error="raise"))


def test_labels_none_without_pymatgen(monkeypatch):
    """With pymatgen missing the spectrum loads, labels are None, and we say why."""
    monkeypatch.setattr(feff, "pymatgen_available", lambda: False)
    l3 = _xas_dict(L3_E, L3_MU, "L3", _feo_dict(), 0)
    l2 = _xas_dict(L2_E, L2_MU, "L2", _feo_dict(), 0)
    with pytest.warns(UserWarning, match="pymatgen is not installed"):
        rec = read_pymatgen_xas(l3, partner=l2)
    assert rec.valence is None and rec.coordination_number is None
    assert rec.td_fraction is None
    assert "pymatgen is not installed" in rec.metadata["label_notes"][0]
    assert rec.metadata["stitch"].startswith("numpy")


# ----------------------------------------------------------------- with pymatgen


def _fepo4():
    """FePO4 in an ideal cristobalite-like (zincblende Fe/P) frame, F-43m.

    Fe3+ and P5+ on the two fcc sublattices, O on the Fe–P bonds with Fe–O 1.86 Å
    and P–O 1.53 Å: every Fe is tetrahedral (bond-valence sum 3.0).
    """
    from pymatgen.core import Lattice, Structure

    a = (1.86 + 1.53) * 4 / np.sqrt(3)
    x = 1.86 / (a * np.sqrt(3))
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(a), ["Fe", "P", "O"], [[0, 0, 0], [0.25] * 3, [x] * 3]
    )


def test_pymatgen_stitch_matches_numpy_stitch():
    pytest.importorskip("pymatgen")
    l3 = _xas_dict(L3_E, L3_MU, "L3", _feo_dict(), 0)
    l2 = _xas_dict(L2_E, L2_MU, "L2", _feo_dict(), 0)
    by_pmg = read_pymatgen_xas(l3, partner=l2, label=False, stitch_method="pymatgen")
    by_np = read_pymatgen_xas(l3, partner=l2, label=False, stitch_method="numpy")
    assert by_pmg.metadata["stitch"] == "pymatgen XAS.stitch L23"
    _check_stitched(by_pmg.energy, by_pmg.intensity)
    np.testing.assert_allclose(by_pmg.energy, by_np.energy)
    # Identical at and above the L2 onset (same splines); below it pymatgen adds
    # its extrapolated L2 spline, clipped at zero: a small difference only.
    above = by_np.energy >= L2_E[0]
    np.testing.assert_allclose(
        by_pmg.intensity[above], by_np.intensity[above], rtol=1e-12
    )
    np.testing.assert_allclose(
        by_pmg.intensity, by_np.intensity, atol=0.01 * L3_MU.max()
    )


def test_labels_feo_octahedral_fe2():
    pytest.importorskip("pymatgen")
    l3 = _xas_dict(L3_E, L3_MU, "L3", _feo_dict(), 0)
    l2 = _xas_dict(L2_E, L2_MU, "L2", _feo_dict(), 0)
    rec = read_pymatgen_xas(l3, partner=l2)
    assert rec.valence == pytest.approx(2.0)
    assert rec.coordination_number == pytest.approx(6.0)
    assert rec.td_fraction == pytest.approx(0.0)
    assert rec.metadata["formula"] == "FeO"
    assert rec.metadata["fe_site_geometries"] == ["octahedral"]


def test_labels_fepo4_tetrahedral_fe3_from_bulk_and_xasdoc(tmp_path):
    pytest.importorskip("pymatgen")
    structure = _fepo4()
    fe_sites = [i for i, s in enumerate(structure) if s.specie.symbol == "Fe"]
    p_site = next(i for i, s in enumerate(structure) if s.specie.symbol == "P")
    sdict = structure.as_dict()
    lines = [
        _bulk_record("mp-fepo4", "L3", L3_E, L3_MU, fe_sites[1], sdict),
        _bulk_record("mp-fepo4", "L3", L3_E, L3_MU, p_site, sdict),  # P: skipped
        _bulk_record("mp-feo", "L2", L2_E, L2_MU),
        _bulk_record("mp-fepo4", "L2", L2_E, L2_MU, fe_sites[1], sdict),
        _bulk_record("mp-feo", "L3", L3_E, L3_MU),
    ]
    path = tmp_path / "L.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines))
    records = list(iter_l_edge_database(path))
    assert [r.identifier for r in records] == [
        f"mp-fepo4-XANES-Fe-L23-site{fe_sites[1]}",
        "mp-feo-XANES-Fe-L23-site0",
    ]
    fepo4, feo = records
    assert (fepo4.valence, fepo4.coordination_number, fepo4.td_fraction) == (
        pytest.approx(3.0),
        pytest.approx(4.0),
        pytest.approx(1.0),
    )
    assert (feo.valence, feo.coordination_number, feo.td_fraction) == (
        pytest.approx(2.0),
        pytest.approx(6.0),
        pytest.approx(0.0),
    )
    assert fepo4.metadata["fe_site_indices"] == [fe_sites[1]]
    # A site-averaged XASDoc of the same structure averages over the 4 Fe sites.
    doc = _doc("L2,3", L3_E, L3_MU, material="mp-fepo4")
    doc["spectrum"]["structure"] = sdict
    (avg,) = read_xasdoc(doc)
    assert avg.metadata["fe_site_indices"] == fe_sites
    assert (avg.valence, avg.coordination_number, avg.td_fraction) == (3.0, 4.0, 1.0)


def test_import_and_load_without_pymatgen(tmp_path):
    """The loaders import and read spectra when pymatgen cannot be imported."""
    path = tmp_path / "xas.json"
    path.write_text(json.dumps(_xas_dict(L3_E, L3_MU, "L2,3", _feo_dict(), 0)))
    code = (
        "import sys, warnings; sys.modules['pymatgen'] = None\n"
        "from hyperspy_fe_ml.library import feff, structure_labels\n"
        "assert not structure_labels.pymatgen_available()\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    rec = feff.read_pymatgen_xas({str(path)!r})\n"
        "assert rec.valence is None and rec.energy.size == 241, rec\n"
        "assert 'pymatgen is not installed' in str(w[0].message)\n"
        "assert 'pymatgen.core' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
