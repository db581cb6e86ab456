"""Fuzzing of every file loader: any bytes give a result or a clear ValueError.

The contract (``docs/reliability.md``, :mod:`hyperspy_fe_ml.fileio`): a file that
cannot be opened raises an ``OSError``; a file that opens but is not what it should
be raises a plain ``ValueError`` (``ModelFileError`` for models) whose message names
the file — never ``KeyError``, ``IndexError``, ``UnicodeDecodeError``,
``BadZipFile``, ``EOFError``, ``zlib.error``, a hang or the execution of anything in
the file. Hypothesis feeds each loader random bytes, truncated and mutated copies of
a valid file, and valid files with wrong types, huge numbers and NaN in their
fields; every call runs under a time limit.
"""

import ast
import contextlib
import copy
import gzip
import io
import json
import pickle
import signal
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hyperspy_fe_ml.fileio import read_npz  # noqa: E402
from hyperspy_fe_ml.library.feff import (  # noqa: E402
    iter_l_edge_database,
    read_pymatgen_xas,
    read_xasdoc,
)
from hyperspy_fe_ml.library.multiplet import ParameterSet, StickSpectrum  # noqa: E402
from hyperspy_fe_ml.library.quanty import read_quanty_spectrum  # noqa: E402
from hyperspy_fe_ml.library.shipped import read_library, save_library  # noqa: E402
from hyperspy_fe_ml.library.standards import read_standard  # noqa: E402
from hyperspy_fe_ml.model import (  # noqa: E402
    OUTPUTS,
    FeStateModel,
    MLPMember,
    ModelFileError,
)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: No loader may take longer than this on a small file, s.
TIME_LIMIT = 10.0

# -- valid files ----------------------------------------------------------------------

ENERGY = np.linspace(700.0, 730.0, 31)
MU = np.exp(-0.5 * ((ENERGY - 709.0) / 1.0) ** 2) + 0.1
SITE = {"species": [{"element": "Fe", "occu": 1}], "abc": [0, 0, 0]}
XAS = {
    "x": ENERGY.tolist(),
    "y": MU.tolist(),
    "edge": "L23",
    "absorbing_element": "Fe",
    "absorbing_index": 0,
    "structure": None,
}
XASDOC = {
    "material_id": "mp-0",
    "spectrum_id": "mp-0-XANES-Fe-L2,3",
    "edge": "L2,3",
    "absorbing_element": "Fe",
    "spectrum": XAS,
}
BULK = [
    {
        "mp-id": "mp-1",
        "absorbing_atom": 0,
        "edge": edge,
        "structure": {"sites": [SITE]},
        "spectrum": [(ENERGY + shift).tolist(), MU.tolist()],
    }
    for edge, shift in (("L3", 0.0), ("L2", 13.0))
]
CSV = (
    "# compound: FeO\n# valence: 2\n# td_fraction: 0\nenergy_eV,intensity\n"
    + "".join(f"{e:g},{m:.6g}\n" for e, m in zip(ENERGY, MU, strict=True))
)
MSA = (
    "#FORMAT      : EMSA/MAS Spectral Data File\n#VERSION     : 1.0\n"
    "#TITLE       : Fe2O3 valence: 3\n#NPOINTS     : 31\n#NCOLUMNS    : 1\n"
    "#XUNITS      : eV\n#YUNITS      : counts\n#DATATYPE    : XY\n"
    "#XPERCHAN    : 1.0\n#OFFSET      : 700.0\n#SIGNALTYPE  : ELS\n"
    "#SPECTRUM    : Spectral Data Starts Here\n"
    + "".join(f"{e:g}, {m:.6g}\n" for e, m in zip(ENERGY, MU, strict=True))
    + "#ENDOFDATA   : End Of Data and File\n"
)
QUANTY = "# Quanty\n# 1\n# NE 30\n   31\n# E Re Im\n" + "".join(
    f"{e - 709.0:.3f} 0.1 {-m:.6g}\n" for e, m in zip(ENERGY, MU, strict=True)
)


def _tgz(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = text.encode()
        info = tarfile.TarInfo("L-XAS/part1.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _bulk(path):
    return list(
        iter_l_edge_database(path, label=False, stitch_method="numpy", on_error="raise")
    )


BULK_TEXT = "\n".join(json.dumps(r) for r in BULK) + "\n"

#: name -> (file name, valid content, loader)
TEXT_LOADERS = {
    "standard_csv": ("FeO.csv", CSV.encode(), read_standard),
    "standard_msa": ("Fe2O3.msa", MSA.encode(), read_standard),
    "quanty": ("Fe3_Oh.spec", QUANTY.encode(), read_quanty_spectrum),
    "pymatgen_xas": (
        "xas.json",
        json.dumps(XAS).encode(),
        lambda p: read_pymatgen_xas(p, label=False),
    ),
    "pymatgen_xas_gz": (
        "xas.json.gz",
        gzip.compress(json.dumps(XAS).encode(), mtime=0),
        lambda p: read_pymatgen_xas(p, label=False),
    ),
    "xasdoc": (
        "docs.json",
        json.dumps([XASDOC]).encode(),
        lambda p: read_xasdoc(p, label=False),
    ),
    "l_edge_ndjson": ("L-XAS.json", BULK_TEXT.encode(), _bulk),
    "l_edge_gz": ("L-XAS.json.gz", gzip.compress(BULK_TEXT.encode(), mtime=0), _bulk),
    "l_edge_tgz": ("L-XAS.tgz", _tgz(BULK_TEXT), _bulk),
}


def _tiny_model() -> FeStateModel:
    """A small but complete model (300 channels, 3 components, 2 x 2 layers)."""
    rng = np.random.default_rng(0)
    n, k, h, m = 300, 3, 4, len(OUTPUTS)
    members = tuple(
        MLPMember(
            weights=(rng.normal(size=(k + 1, h)), rng.normal(size=(h, m))),
            biases=(rng.normal(size=h), rng.normal(size=m)),
        )
        for _ in range(2)
    )
    components = np.linalg.qr(rng.normal(size=(n, k)))[0].T
    return FeStateModel(
        energy=np.round(np.arange(700.0, 730.0, 0.1), 6),
        input_mean=np.zeros(n),
        input_scale=np.ones(n),
        centroid_mean=709.0,
        centroid_scale=1.0,
        components=components,
        component_scale=np.ones(k),
        members=members,
        target_mean=np.array([2.5, 0.5, 0.2, 5.5]),
        target_scale=np.array([0.5, 0.3, 0.3, 0.5]),
        interval_scale=np.ones(m),
        interval_floor=np.full(m, 0.05),
        ood_threshold=3.0,
        info={"purpose": "fuzzing"},
    )


def _tiny_library(path: Path) -> Path:
    sets = [ParameterSet(2, "Oh", 1.0), ParameterSet(3, "Td", -0.6)]
    sticks = [
        StickSpectrum(
            np.array([0.0, 1.0, 12.0]),
            np.array([1.0, 0.5, 0.4]),
            np.array([3, 3, 2], dtype=np.int8),
        ),
        StickSpectrum(
            np.array([0.5, 12.5]), np.array([1.0, 0.3]), np.array([3, 2], dtype=np.int8)
        ),
    ]
    return save_library(path, sets, sticks, {"note": "fuzz"}, "0.0")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    meta = _tiny_model().save(folder / "model.json")
    return meta.read_bytes(), meta.with_suffix(".npz").read_bytes()


@pytest.fixture(scope="module")
def library_bytes(tmp_path_factory):
    return _tiny_library(tmp_path_factory.mktemp("lib") / "lib.npz").read_bytes()


# -- the contract ---------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float = TIME_LIMIT):
    def expire(signum, frame):
        raise TimeoutError(f"the loader took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _load_or_clear_error(loader, path: Path, allowed=(ValueError,)):
    """Call ``loader(path)``: a result, or an allowed error naming the file."""
    with _time_limit(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return loader(path)
        except allowed as error:
            # Exactly the documented classes: no UnicodeDecodeError, JSONDecodeError.
            assert type(error) in allowed, f"{type(error).__name__}: {error}"
            assert path.name in str(error), f"message does not name the file: {error}"
            return None


def _mutate(valid: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(valid)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


def _variants(valid: bytes):
    """Random bytes, a truncated copy or a copy with some bytes changed."""
    return st.one_of(
        st.binary(max_size=2048),
        st.integers(0, len(valid)).map(lambda k: valid[:k]),
        st.lists(
            st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)),
            min_size=1,
            max_size=8,
        ).map(lambda edits: _mutate(valid, edits)),
    )


@pytest.mark.parametrize("name", list(TEXT_LOADERS))
def test_valid_files_load(name, tmp_path):
    filename, content, loader = TEXT_LOADERS[name]
    path = tmp_path / filename
    path.write_bytes(content)
    result = loader(path)
    records = result if isinstance(result, list) else [result]
    assert len(records) == 1 and records[0].energy.size >= 2


@pytest.mark.parametrize("name", list(TEXT_LOADERS))
@FUZZ
@given(data=st.data())
def test_damaged_text_files_give_a_result_or_a_clear_error(name, data, tmp_path):
    filename, content, loader = TEXT_LOADERS[name]
    path = tmp_path / filename
    path.write_bytes(data.draw(_variants(content)))
    _load_or_clear_error(loader, path)


# -- JSON with wrong types, huge numbers, NaN -----------------------------------------

WEIRD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -(10**400), 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
WEIRD = st.recursive(
    WEIRD_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _node_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _node_paths(value, (*prefix, key))
    elif isinstance(node, list) and node:
        for index in sorted({0, len(node) - 1}):
            yield from _node_paths(node[index], (*prefix, index))


def _replaced(document, path, value):
    if not path:
        return value
    document = copy.deepcopy(document)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


def _json_text(document) -> str:
    # Python's json writes NaN/Infinity and 400-digit integers: so may a file.
    import sys

    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(document)
    finally:
        sys.set_int_max_str_digits(limit)


JSON_LOADERS = {
    "pymatgen_xas": ("xas.json", XAS, lambda p: read_pymatgen_xas(p, label=False)),
    "xasdoc": ("docs.json", [XASDOC], lambda p: read_xasdoc(p, label=False)),
    "l_edge_record": ("L-XAS.json", BULK[0], _bulk),
}


@pytest.mark.parametrize("name", list(JSON_LOADERS))
@FUZZ
@given(data=st.data())
def test_json_fields_of_any_type_give_a_result_or_a_clear_error(name, data, tmp_path):
    filename, document, loader = JSON_LOADERS[name]
    where = data.draw(st.sampled_from(list(_node_paths(document))))
    changed = _replaced(document, where, data.draw(WEIRD))
    path = tmp_path / filename
    if name == "l_edge_record":  # the record and its L2 partner, one per line
        path.write_text(_json_text(changed) + "\n" + json.dumps(BULK[1]) + "\n")
    else:
        path.write_text(_json_text(changed))
    _load_or_clear_error(loader, path)


def test_deeply_nested_json_is_refused_not_a_recursion_crash(tmp_path):
    path = tmp_path / "xas.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="xas.json is not valid UTF-8 JSON"):
        read_pymatgen_xas(path, label=False)
    with pytest.raises(ValueError, match="docs.json is not valid UTF-8 JSON"):
        read_xasdoc(path.rename(tmp_path / "docs.json"), label=False)


def test_a_json_file_holding_a_file_name_is_not_followed(tmp_path):
    # Found by the fuzzer: a JSON string used to be taken for the path of another
    # file to read.
    (tmp_path / "other.json").write_text(json.dumps([XASDOC]))
    path = tmp_path / "docs.json"
    path.write_text(json.dumps(str(tmp_path / "other.json")))
    with pytest.raises(ValueError, match="docs.json: the file holds a JSON string"):
        read_xasdoc(path, label=False)
    with pytest.raises(ValueError, match="xas.json.*not a pymatgen XAS dict but str"):
        read_pymatgen_xas(path.rename(tmp_path / "xas.json"), label=False)


def test_bulk_file_keeps_the_good_records_of_a_damaged_file(tmp_path):
    # One line not UTF-8, one not JSON, one with a list as site index: each is one
    # warning, and the good L2/L3 pair is still read (on_error="warn").
    bad = [
        b"\xff\xfe not text",
        b"{not json",
        json.dumps({**BULK[0], "mp-id": "mp-9", "absorbing_atom": [0]}).encode(),
    ]
    lines = [json.dumps(BULK[0]).encode(), *bad, json.dumps(BULK[1]).encode()]
    path = tmp_path / "L-XAS.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.warns(UserWarning) as caught:
        records = list(iter_l_edge_database(path, label=False, stitch_method="numpy"))
    assert [r.identifier for r in records] == ["mp-1-XANES-Fe-L23-site0"]
    messages = [str(w.message) for w in caught]
    assert any("line 2: not UTF-8 text" in m for m in messages)
    assert any("line 3: not valid JSON" in m for m in messages)
    assert any("line 4" in m and "not a whole number" in m for m in messages)
    # A gzip file cut short: what came before the damage is kept, with a warning.
    gz = tmp_path / "L-XAS.json.gz"
    whole = gzip.compress(BULK_TEXT.encode() * 200, mtime=0)
    gz.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match="corrupt or truncated.*Reading stopped"):
        kept = list(iter_l_edge_database(gz, label=False, stitch_method="numpy"))
    assert len(kept) >= 1


# -- model files ----------------------------------------------------------------------


def _load_model(path: Path):
    model = FeStateModel.load(path)
    # A model that loads also predicts (no shape or dtype surprises later).
    result = model.predict(np.zeros((2, model.n_channels)))
    assert set(OUTPUTS) <= set(result)
    return model


def _write_model(folder: Path, meta: bytes, npz: bytes) -> Path:
    (folder / "model.npz").write_bytes(npz)
    path = folder / "model.json"
    path.write_bytes(meta)
    return path


def _rehashed(meta: bytes, npz: bytes) -> bytes:
    """The JSON with the hash of ``npz``: a tampered file that passes the hash."""
    import hashlib

    document = json.loads(meta)
    document["arrays_sha256"] = hashlib.sha256(npz).hexdigest()
    return json.dumps(document).encode()


@FUZZ
@given(data=st.data())
def test_damaged_model_json_gives_a_model_or_model_file_error(
    data, model_files, tmp_path
):
    meta, npz = model_files
    path = _write_model(tmp_path, data.draw(_variants(meta)), npz)
    _load_or_clear_error(_load_model, path, (ModelFileError,))


@FUZZ
@given(data=st.data())
def test_damaged_model_arrays_give_a_model_or_model_file_error(
    data, model_files, tmp_path
):
    # The hash is recomputed, so the damage reaches the archive reader.
    meta, npz = model_files
    damaged = data.draw(_variants(npz))
    path = _write_model(tmp_path, _rehashed(meta, damaged), damaged)
    _load_or_clear_error(_load_model, path, (ModelFileError,))


@FUZZ
@given(data=st.data())
def test_model_json_fields_of_any_type(data, model_files, tmp_path):
    meta, npz = model_files
    document = json.loads(meta)
    key = data.draw(
        st.sampled_from(
            [
                "arrays",
                "arrays_sha256",
                "n_members",
                "n_layers",
                "ood_threshold",
                "info",
                "format_version",
                "outputs",
            ]
        )
    )
    document[key] = data.draw(WEIRD)
    path = _write_model(tmp_path, _json_text(document).encode(), npz)
    _load_or_clear_error(_load_model, path, (ModelFileError,))


ARRAY_VALUES = st.sampled_from(
    [
        np.zeros(0),
        np.zeros(()),
        np.full(300, np.nan),
        np.full((3, 300), np.inf),
        np.zeros((300, 3)),
        np.arange(300),
        np.array(["a", "b"]),
        np.zeros((4, 4), dtype=np.complex128),
        np.zeros((5, 5)),
        np.zeros(4),
    ]
)


@FUZZ
@given(data=st.data())
def test_model_arrays_of_wrong_shape_or_type_are_refused(data, model_files, tmp_path):
    # A hand-edited (and re-hashed) array file: refused at load, with a message.
    meta, npz = model_files
    with np.load(io.BytesIO(npz)) as archive:
        arrays = {k: archive[k] for k in archive.files}
    key = data.draw(st.sampled_from(sorted(arrays)))
    delete = data.draw(st.booleans())
    if delete:
        del arrays[key]
    else:
        arrays[key] = data.draw(ARRAY_VALUES)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = _write_model(tmp_path, _rehashed(meta, buffer.getvalue()), buffer.getvalue())
    if delete:
        with pytest.raises(ModelFileError, match=f"model.json.*{key}"):
            FeStateModel.load(path)
    else:  # some replacements (four zeros for a bias) are a valid model
        _load_or_clear_error(_load_model, path, (ModelFileError,))


def test_model_arrays_file_name_cannot_point_elsewhere(model_files, tmp_path):
    meta, npz = model_files
    for name in ("../model.npz", "/etc/passwd", "", ".."):
        document = {**json.loads(meta), "arrays": name}
        path = _write_model(tmp_path, json.dumps(document).encode(), npz)
        with pytest.raises(ModelFileError, match="'arrays' must name the array file"):
            FeStateModel.load(path)


# -- library files --------------------------------------------------------------------


def _load_library(path: Path):
    library = read_library(path)
    for index in range(len(library)):  # offsets index the sticks
        library.sticks(index)
    return library


@FUZZ
@given(data=st.data())
def test_damaged_library_gives_a_library_or_a_clear_error(
    data, library_bytes, tmp_path
):
    path = tmp_path / "lib.npz"
    path.write_bytes(data.draw(_variants(library_bytes)))
    _load_or_clear_error(_load_library, path)


@FUZZ
@given(data=st.data())
def test_library_fields_of_wrong_shape_or_type_are_refused(
    data, library_bytes, tmp_path
):
    with np.load(io.BytesIO(library_bytes)) as archive:
        arrays = {k: archive[k] for k in archive.files}
    key = data.draw(st.sampled_from(sorted(arrays)))
    value = data.draw(
        st.sampled_from(
            [
                np.zeros(0),
                np.int64(7),
                np.array("x"),
                np.array("{not json"),
                np.array([0, 5, 2]),
                np.full(5, np.nan),
                np.zeros((2, 2)),
                np.array([0, 3, 99]),
                None,
            ]
        )
    )
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    path = tmp_path / "lib.npz"
    np.savez(path, **arrays)
    _load_or_clear_error(_load_library, path)


def test_library_of_another_schema_version_says_what_to_do(library_bytes, tmp_path):
    with np.load(io.BytesIO(library_bytes)) as archive:
        arrays = {k: archive[k] for k in archive.files}
    for version, fix in ((99, "newer hyperspy_fe_ml: update"), (0, "fe-ml simulate")):
        path = tmp_path / f"lib{version}.npz"
        np.savez(path, **{**arrays, "schema_version": np.int64(version)})
        with pytest.raises(ValueError, match=f"schema version {version}.*{fix}"):
            read_library(path)


# -- nothing is ever unpickled or evaluated -------------------------------------------


class _Payload:
    """Unpickling this would create the marker file (it must never happen)."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_objects_in_npz_files_are_never_loaded(model_files, tmp_path):
    payload = _Payload()
    payload.marker = tmp_path / "executed"
    hostile = np.array([payload], dtype=object)
    meta, npz = model_files
    with np.load(io.BytesIO(npz)) as archive:
        arrays = {k: archive[k] for k in archive.files}
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, "energy": hostile})
    path = _write_model(tmp_path, _rehashed(meta, buffer.getvalue()), buffer.getvalue())
    with pytest.raises(ModelFileError, match="pickle"):
        FeStateModel.load(path)
    lib = tmp_path / "lib.npz"
    np.savez(lib, schema_version=np.int64(1), offsets=hostile)
    with pytest.raises(ValueError, match="pickle"):
        read_library(lib)
    with pytest.raises(ValueError, match="pickle"):
        read_npz(lib)
    # A raw pickle renamed .npz is not an archive either.
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match="raw.npz is damaged or not a NumPy .npz"):
        read_library(raw)
    assert not payload.marker.exists()


def test_oversized_arrays_are_refused_before_allocation(tmp_path):
    # A header that declares 8 TB of float64 in a few hundred bytes.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("offsets.npy", header.getvalue())
    with pytest.raises(ValueError, match="huge.npz.*declares 8000000000000 bytes"):
        read_npz(path)


def test_package_source_never_unpickles_or_evaluates():
    # Every np.load passes allow_pickle=False; no pickle/marshal/shelve, eval or
    # exec, no yaml.load (yaml.safe_load would be fine).
    root = Path(__file__).resolve().parents[1] / "hyperspy_fe_ml"
    problems = []
    for file in sorted(root.rglob("*.py")):
        tree = ast.parse(file.read_text(), filename=str(file))
        for node in ast.walk(tree):
            where = f"{file.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                for name in [module, *names]:
                    if name.split(".")[0] in {
                        "pickle",
                        "dill",
                        "cloudpickle",
                        "marshal",
                        "shelve",
                        "joblib",
                    }:
                        problems.append(f"{where} imports {name}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            owner = getattr(getattr(func, "value", None), "id", "")
            if name in {"eval", "exec"} and isinstance(func, ast.Name):
                problems.append(f"{where} calls {name}")
            if name == "load" and owner == "yaml":
                problems.append(f"{where} calls yaml.load")
            if name == "load" and owner in {"np", "numpy"}:
                flags = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                if flags.get("allow_pickle", None) is not False:
                    problems.append(f"{where} calls np.load without allow_pickle=False")
    assert not problems, problems
