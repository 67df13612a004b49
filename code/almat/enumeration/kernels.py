"""The numba kernels of the enumeration walk: the depth-first walk of one supercell and its canonical test.

Compiled once and cached on disk (``cache=True``: numba writes the machine
code next to this file, or under ``NUMBA_CACHE_DIR``), so only the first run
on a machine pays for compiling. Everything here works on plain integer
arrays prepared by :mod:`almat.enumeration.walk`.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, no_cpython_wrapper=True)
def is_canonical(lab, src, is_translation):
    """True if no permutation maps ``lab`` to a smaller labelling and no translation fixes it."""
    m = lab.shape[0]
    for g in range(src.shape[0]):
        c = 0
        while c < m and lab[src[g, c]] == lab[c]:
            c += 1
        if c == m:
            if is_translation[g]:
                return False
        elif lab[src[g, c]] < lab[c]:
            return False
    return True


@numba.njit(cache=True, no_cpython_wrapper=True)
def is_canonical_legal(lab, src, is_translation, gid, lid, counter, lo, hi):
    """:func:`is_canonical` where an image may put a species where it is not allowed.

    The image of ``lab`` under ``g`` carries, at position ``c``, the species of
    position ``src[g, c]``, as site ``c``'s label (``lid[c % d, gid[...]]``, -1
    if not allowed there). Only legal images (every species allowed, counters
    within ``[lo, hi]``) are members of the orbit, so a smaller image rejects
    ``lab`` only if it is legal.
    """
    m = lab.shape[0]
    d = gid.shape[0]
    counts = np.zeros(lo.shape[0], dtype=np.int64)
    for g in range(src.shape[0]):
        c = 0
        v = lab[0]
        while c < m:
            s = src[g, c]
            v = lid[c % d, gid[s % d, lab[s]]]
            if v != lab[c]:
                break
            c += 1
        if c == m:
            if is_translation[g]:
                return False
            continue
        if v < 0 or v > lab[c]:
            continue
        legal = True
        for q in range(lo.shape[0]):
            counts[q] = 0
        for e in range(m):
            s = src[g, e]
            v = lid[e % d, gid[s % d, lab[s]]]
            if v < 0:
                legal = False
                break
            if counter[e, v] >= 0:
                counts[counter[e, v]] += 1
        if legal:
            for q in range(lo.shape[0]):
                if counts[q] < lo[q] or counts[q] > hi[q]:
                    legal = False
                    break
        if legal:
            return False
    return True


@numba.njit(cache=True)
def enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation, occupied, occ_counter,
                   nbr_ptr, nbr, clique, lonely, relabel, gid, lid, out, width):
    """Depth-first walk over the labellings of one supercell, keeping orbit representatives.

    ``nlab[c]``, ``counter[c, l]`` and ``occupied[c, l]`` are per position;
    ``cap[c, k]`` is how many positions from ``c`` on can still feed counter
    ``k``; ``src[g]`` is the inverse of group element ``g``, so the image of
    ``lab`` under ``g`` is ``lab[src[g]]``. Exclusion: ``nbr[nbr_ptr[c]:nbr_ptr[c + 1]]``
    are the later positions that may not hold an atom when ``c`` does,
    ``clique[c]`` a clique of the exclusion graph holding ``c`` (one atom at
    most each) and ``lonely[c]`` marks positions that can never hold an atom.
    ``relabel``: some element of the group maps a site onto one with other
    species or counters (see :func:`is_canonical_legal`). Row ``i`` is written to
    ``out[i * width: i * width + m]`` while it fits; returns the number of rows found.
    """
    m = nlab.shape[0]
    nk = lo.shape[0]
    lab = np.empty(m, dtype=np.int8)
    for c in range(m):
        lab[c] = -1
    counts = np.zeros(nk, dtype=np.int64)
    blocked = np.zeros(m, dtype=np.int64)  # atoms next to c among earlier positions (+1 if lonely)
    avail = np.zeros(m, dtype=np.int64)  # per clique: open positions that could still hold an atom
    for c in range(m):
        if lonely[c]:
            blocked[c] = 1
        else:
            avail[clique[c]] += 1
    room = 0  # cliques with an open position: most atoms the open positions can still take
    for q in range(m):
        if avail[q] > 0:
            room += 1
    capacity = out.shape[0] // width if width > 0 else 0
    n = 0
    c = 0
    while c >= 0:
        prev = lab[c]
        if prev < 0:  # entering c: it is no longer open
            if blocked[c] == 0:
                avail[clique[c]] -= 1
                if avail[clique[c]] == 0:
                    room -= 1
        else:  # undo the previous label
            if counter[c, prev] >= 0:
                counts[counter[c, prev]] -= 1
            if occupied[c, prev]:
                for e in range(nbr_ptr[c], nbr_ptr[c + 1]):
                    o = nbr[e]
                    blocked[o] -= 1
                    if blocked[o] == 0:
                        avail[clique[o]] += 1
                        if avail[clique[o]] == 1:
                            room += 1
        nxt = prev + 1
        if blocked[c] > 0:
            while nxt < nlab[c] and occupied[c, nxt]:
                nxt += 1
        if nxt >= nlab[c]:  # leaving c: open again
            lab[c] = -1
            if blocked[c] == 0:
                avail[clique[c]] += 1
                if avail[clique[c]] == 1:
                    room += 1
            c -= 1
            continue
        lab[c] = nxt
        if counter[c, nxt] >= 0:
            counts[counter[c, nxt]] += 1
        if occupied[c, nxt]:
            for e in range(nbr_ptr[c], nbr_ptr[c + 1]):
                o = nbr[e]
                blocked[o] += 1
                if blocked[o] == 1:
                    avail[clique[o]] -= 1
                    if avail[clique[o]] == 0:
                        room -= 1
        ok = True
        need = 0  # atoms still missing from the lower limits
        for q in range(nk):
            if counts[q] > hi[q] or counts[q] + cap[c + 1, q] < lo[q]:
                ok = False
                break
            if occ_counter[q] and counts[q] < lo[q]:
                need += lo[q] - counts[q]
        if not ok or need > room:
            continue
        if c < m - 1:
            c += 1
            continue
        if relabel:
            canonical = is_canonical_legal(lab, src, is_translation, gid, lid, counter, lo, hi)
        else:
            canonical = is_canonical(lab, src, is_translation)
        if canonical:
            if n < capacity:
                for e in range(m):
                    out[n * width + e] = lab[e]
            n += 1
    return n
