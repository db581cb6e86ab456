"""Safe file writing and reading shared by the model, the library and the commands.

- :func:`atomic_write` writes a file so that an interruption (Ctrl-C, a crash, a full
  disk) never leaves half a file: the data go to a temporary file in the same
  folder, which replaces the target with :func:`os.replace` only once it is
  complete and flushed to disk. Until then the old file, if any, is untouched; on
  an error the temporary file is removed.
- :func:`npz_bytes` writes a NumPy ``.npz`` archive whose bytes depend on the arrays
  only (no time stamps): the same arrays give the same file and the same SHA-256,
  so a hash pinned to a model's arrays holds when the model is saved again.
- :func:`read_npz` reads a NumPy ``.npz`` archive without pickle and with every
  check done before any array is allocated: a damaged, truncated or hostile file
  gives a :class:`ValueError` naming the file, never a ``BadZipFile``, ``EOFError``,
  ``zlib.error`` or a multi-gigabyte allocation.

The error contract of every loader in the package (see ``docs/reliability.md``):
a file that cannot be opened raises an :class:`OSError` (``FileNotFoundError``,
``PermissionError``, ...); a file that opens but is not what it should be raises a
:class:`ValueError` whose message names the file, the problem and the fix.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["MAX_NPZ_BYTES", "atomic_write", "npz_bytes", "read_npz"]

#: Largest total size (bytes, uncompressed) :func:`read_npz` accepts by default.
MAX_NPZ_BYTES = 2**30


#: The time stamp of every member :func:`npz_bytes` writes (the earliest ZIP allows).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` archive of ``arrays`` whose bytes depend on them only.

    What :func:`numpy.savez_compressed` writes, but with fixed member time stamps
    (it stamps the current time), members in the order given and no pickled
    objects.

    Examples
    --------
    >>> import hashlib
    >>> a = npz_bytes({"x": np.arange(3.0)})
    >>> a == npz_bytes({"x": np.arange(3.0)})
    True
    >>> import io
    >>> np.load(io.BytesIO(a))["x"].tolist()
    [0.0, 1.0, 2.0]
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block ends cleanly.

    Parameters
    ----------
    path
        The file to (over)write; its folder must exist.
    mode
        ``"wb"`` (binary) or ``"w"`` (UTF-8 text).

    Yields
    ------
    file object
        Write to it inside the ``with`` block.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("complete")
    >>> target.read_text()
    'complete'
    >>> try:
    ...     with atomic_write(target, "w") as handle:
    ...         _ = handle.write("half")
    ...         raise KeyboardInterrupt
    ... except KeyboardInterrupt:
    ...     pass
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('complete', ['out.txt'])
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # O_EXCL: never follow or reuse someone else's file; 0o666 & ~umask as open().
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(
            descriptor, mode, **({"encoding": "utf-8"} if mode == "w" else {})
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_npz(
    path: str | os.PathLike, *, what: str = "file", max_bytes: int = MAX_NPZ_BYTES
) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read without pickle, after checking them.

    Every member must be a ``.npy`` array of a plain (non-object) dtype whose
    declared size fits the member, and the total must stay below ``max_bytes``.

    Parameters
    ----------
    path
        The ``.npz`` file.
    what
        What the file should be, for messages (e.g. ``"model array file"``).
    max_bytes
        Largest total uncompressed size accepted.

    Returns
    -------
    dict of numpy.ndarray
        By member name (without ``.npy``).

    Raises
    ------
    OSError
        When the file cannot be opened (missing, permission).
    ValueError
        When it is not a readable ``.npz`` archive of plain arrays.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez(path, x=np.arange(3))
    >>> read_npz(path)["x"]
    array([0, 1, 2])
    """
    path = Path(path)
    fix = f"The {what} {path} is damaged or not a NumPy .npz archive"
    with open(path, "rb") as raw:  # OSError for a missing or unreadable file
        try:
            archive = zipfile.ZipFile(raw)
        except Exception as error:  # whatever zipfile raises on damaged bytes
            raise ValueError(
                f"{fix} ({type(error).__name__}: {error}); replace or regenerate it."
            ) from None
        with archive:
            _check_members(archive, fix, max_bytes)
            try:
                raw.seek(0)
                with np.load(raw, allow_pickle=False) as data:
                    return {key: data[key] for key in data.files}
            except Exception as error:  # BadZipFile, EOFError, zlib.error, ...
                raise ValueError(
                    f"{fix} ({type(error).__name__}: {error}); replace or regenerate "
                    "it."
                ) from None


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _check_members(archive: zipfile.ZipFile, fix: str, max_bytes: int) -> None:
    """Headers of every member: plain dtypes, sizes that fit, total bounded."""
    total = 0
    names = set()
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in names:
            raise ValueError(f"{fix}: member {name!r} is not a (unique) .npy array.")
        names.add(name[:-4])
        total += info.file_size
        if total > max_bytes:
            raise ValueError(
                f"{fix}: its arrays would take more than {max_bytes / 2**20:.0f} MiB."
            )
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version not in _HEADER_READERS:
                    raise ValueError(f".npy format version {version} is not read")
                shape, _, dtype = _HEADER_READERS[version](member)
                header_end = member.tell()
        except Exception as error:  # any malformed header, whatever numpy raises
            raise ValueError(
                f"{fix}: the header of {name!r} is unreadable ({error})."
            ) from None
        if dtype.hasobject:
            raise ValueError(
                f"{fix}: {name!r} holds Python objects (pickle), which are never "
                "loaded. Write the arrays with plain numeric or string dtypes."
            )
        size = math.prod(shape) * dtype.itemsize
        if size != info.file_size - header_end:
            raise ValueError(
                f"{fix}: {name!r} declares {size} bytes of data but holds "
                f"{info.file_size - header_end}."
            )
