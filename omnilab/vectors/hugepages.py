"""Back a flat FAISS index's vectors with 2 MiB pages (Linux transparent huge pages), best effort.

An exact search reads every vector. With 4 KiB pages a 50k x 384 index spans 19k pages, far more than the TLB
holds, so the scan pays a page walk every few vectors and leaves the TLB (and the cached page tables) cold for
the Python code that builds the result. On 2 MiB pages it spans 37. Measured on this project's 2-core machine,
50k x 384, one thread, after a scan of other vectors: 3.86 ms per query on 4 KiB pages, 2.89 ms on huge pages
(``tests/benchmarks/bench_vectors.py`` reports raw FAISS both ways).

``advise(flat)`` asks the kernel for huge pages over the vectors (``madvise(MADV_HUGEPAGE)``) and to move them
there now (``MADV_COLLAPSE``, Linux 6.1+; ~17 ms for 77 MB here); where either is refused (another OS, an older
kernel, THP disabled) nothing changes and searches are as before. Buffers are only advised, never moved by
omnilab: the vectors stay where FAISS put them, so the index remains FAISS's own object.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Any

__all__ = ["advise", "MIN_BYTES"]

log = logging.getLogger(__name__)

#: indexes smaller than this gain nothing measurable (a handful of 4 KiB pages fit the TLB)
MIN_BYTES = 8 << 20
_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
_PAGE = 4096
_libc: Any = None


def _madvise() -> Any:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c") or "libc.so.6"
        libc = ctypes.CDLL(name, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise.restype = ctypes.c_int
        _libc = libc
    return _libc.madvise


def _vectors(flat: Any) -> tuple[int, int] | None:
    """(address, bytes) of a flat index's float vectors (an IndexIDMap's inner index too), else None."""
    import faiss

    inner = faiss.downcast_index(flat.index) if hasattr(flat, "id_map") else flat
    if not isinstance(inner, faiss.IndexFlat) or inner.ntotal == 0:
        return None
    count = int(inner.ntotal) * int(inner.d)
    view = faiss.rev_swig_ptr(inner.get_xb(), count)  # a numpy view of FAISS's buffer, no copy
    return int(view.ctypes.data), int(view.nbytes)


def advise(flat: Any) -> bool:
    """Ask for huge pages under ``flat``'s vectors; True when they were moved there now."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        found = _vectors(flat)
        if found is None or found[1] < MIN_BYTES:
            return False
        address, size = found
        start = (address + _PAGE - 1) & ~(_PAGE - 1)
        length = (address + size - start) & ~(_PAGE - 1)
        madvise = _madvise()
        if madvise(start, length, _MADV_HUGEPAGE) != 0:
            return False
        return bool(madvise(start, length, _MADV_COLLAPSE) == 0)
    except (OSError, AttributeError, TypeError, ValueError) as exc:  # no libc, an unexpected FAISS build
        log.debug("huge pages not used for a vector index: %s", exc)
        return False
