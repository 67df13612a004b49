"""How many labellings a group element fixes: those constant on each of its blocks (orbits of positions).

Two ways, both exact. Without exclusion and with one set of site rules,
the count depends only on how many blocks of each size each site heads
(:func:`block_profiles`, :func:`profile_count`: a dynamic programme over the
counter totals). Otherwise the blocks are walked one by one, breadth first
through each connected part of the exclusion graph, and a state also records
which open blocks hold atoms (:func:`fixed_count`).
"""

from __future__ import annotations

import numpy as np

from almat.enumeration.errors import EnumerationTooLargeError, too_many_linked
from almat.enumeration.problem import Problem
from almat.orderings import VACANCY

#: Most blocks that the exclusion count keeps open at once (its states grow as 2 to this power).
MAX_FRONTIER = 14


def block_profiles(blocks: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct block profiles and how often each occurs among the rows of ``blocks``.

    Profile entry ``j * (m + 1) + k`` counts the blocks of size ``k`` headed by site ``j``.
    """
    g, m = blocks.shape
    width = d * (m + 1)
    sizes = np.bincount((blocks + (np.arange(g) * m)[:, None]).ravel(), minlength=g * m).reshape(g, m)
    row, head = np.nonzero(blocks == np.arange(m))
    where = row * width + (head % d) * (m + 1) + sizes[row, head]
    profile = np.bincount(where, minlength=g * width).reshape(g, width)
    keys = np.ascontiguousarray(profile).view(np.dtype((np.void, width * 8))).ravel()
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return profile[first], counts


def profile_count(problem: Problem, profile: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray) -> int:
    """Labellings constant on blocks with this profile whose counter totals lie in ``[lo, hi]``."""
    groups = [(int(i) // (m + 1), int(i) % (m + 1), int(profile[i])) for i in np.flatnonzero(profile)]
    if not len(lo):
        return int(np.prod([int(problem.nlab[j]) ** times for j, _, times in groups], dtype=object))
    states = {tuple([0] * len(lo)): 1}
    for j, size, times in groups:
        for _ in range(times):
            new: dict[tuple[int, ...], int] = {}
            for state, ways in states.items():
                for lab in range(int(problem.nlab[j])):
                    k = int(problem.counter[j, lab])
                    if k >= 0:
                        if state[k] + size > hi[k]:
                            continue
                        key = state[:k] + (state[k] + size,) + state[k + 1:]
                    else:
                        key = state
                    new[key] = new.get(key, 0) + ways
            states = new
    return sum(w for st, w in states.items() if all(x >= a for x, a in zip(st, lo)))


def _block_graph(blocks: np.ndarray, graph: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Blocks in processing order, block-level exclusion, and the step after which each block is done.

    Returns ``heads`` (block representatives, in processing order: breadth first
    through each connected component), ``banned`` (blocks that hold two
    excluding sites or a lonely one: never atoms), ``adjacent`` (neighbour sets)
    and ``last`` (the latest step at which a neighbour is processed).
    """
    heads, inverse = np.unique(blocks, return_inverse=True)
    edges, lonely = graph
    nb = len(heads)
    banned = np.zeros(nb, dtype=bool)
    banned[inverse[lonely]] = True
    pairs = inverse[edges] if len(edges) else np.zeros((0, 2), dtype=np.int64)
    banned[pairs[pairs[:, 0] == pairs[:, 1], 0]] = True
    adjacent: list[set[int]] = [set() for _ in range(nb)]
    for a, b in pairs[pairs[:, 0] != pairs[:, 1]].tolist():
        adjacent[a].add(b)
        adjacent[b].add(a)
    order, seen = [], np.zeros(nb, dtype=bool)
    for start in range(nb):
        if seen[start]:
            continue
        seen[start] = True
        queue = [start]
        for b in queue:
            order.append(b)
            for o in sorted(adjacent[b]):
                if not seen[o]:
                    seen[o] = True
                    queue.append(o)
    step = np.empty(nb, dtype=np.int64)
    step[order] = np.arange(nb)
    renamed = [{int(step[o]) for o in adjacent[b]} for b in order]
    last = np.array([max(a, default=-1) for a in renamed], dtype=np.int64)
    return heads[order], banned[order], renamed, last


def fixed_count(problem: Problem, blocks: np.ndarray, allowed: np.ndarray, counters: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray, graph: tuple[np.ndarray, np.ndarray], n: int) -> int:
    """Labellings constant on each block, allowed everywhere, with counter totals in ``[lo, hi]`` and
    no two atoms excluding each other.

    Blocks are processed one by one (step ``s``); a state is the counter totals
    and the set of atom-holding blocks that still have an unprocessed neighbour.
    Without exclusion that set is always empty.
    """
    heads, banned, adjacent, last = _block_graph(blocks, graph)
    nb = len(heads)
    opened = np.zeros(nb + 1, dtype=np.int64)
    np.add.at(opened, np.arange(nb)[last > np.arange(nb)], 1)
    np.add.at(opened, last[last > np.arange(nb)], -1)
    if nb and np.cumsum(opened).max() > MAX_FRONTIER:
        raise EnumerationTooLargeError(
            too_many_linked(problem.near.min_distance, n, int(np.cumsum(opened).max()), MAX_FRONTIER))
    options = _block_options(problem, blocks, heads, allowed, counters)
    closing: dict[int, list[int]] = {}
    for s, t in enumerate(last.tolist()):
        if t > s:
            closing.setdefault(t, []).append(s)
    hi_list = hi.tolist()
    states = {((), tuple([0] * len(lo))): 1}
    for s in range(nb):
        done = closing.get(s, ())
        new: dict[tuple, int] = {}
        for (atoms, state), ways in states.items():
            crowded = banned[s] or any(a in adjacent[s] for a in atoms)
            for atom, steps in options[s]:
                if atom and crowded:
                    continue
                key = list(state)
                for k, c in steps:
                    key[k] += c
                if any(key[k] > hi_list[k] for k, _ in steps):
                    continue
                after = atoms + (s,) if atom and last[s] > s else atoms
                if done:
                    after = tuple(a for a in after if a not in done)
                entry = (after, tuple(key))
                new[entry] = new.get(entry, 0) + ways
        states = new
    return sum(w for (_, st), w in states.items() if all(x >= a for x, a in zip(st, lo)))


def _block_options(problem: Problem, blocks: np.ndarray, heads: np.ndarray, allowed: np.ndarray,
                   counters: np.ndarray) -> list[list[tuple[bool, list[tuple[int, int]]]]]:
    """For each block (in processing order): per species allowed on all its positions, whether it is
    an atom and which counters it raises by how much."""
    nb, m = len(heads), len(blocks)
    step = np.empty(m, dtype=np.int64)
    step[heads] = np.arange(nb)
    by_block = np.argsort(step[blocks], kind="stable")
    starts = np.searchsorted(step[blocks][by_block], np.arange(nb))
    sizes = np.diff(np.append(starts, m)).tolist()
    ok = np.logical_and.reduceat(allowed[by_block], starts, axis=0)
    grouped = counters[:, by_block, :]
    low = np.minimum.reduceat(grouped, starts, axis=1)
    same = (low == np.maximum.reduceat(grouped, starts, axis=1))
    atom = [name != VACANCY for name in problem.names]
    options = []
    for b in range(nb):
        here = []
        for s in np.flatnonzero(ok[b]).tolist():
            steps: dict[int, int] = {}
            for i in range(len(counters)):
                if same[i, b, s]:
                    if low[i, b, s] >= 0:
                        steps[int(low[i, b, s])] = steps.get(int(low[i, b, s]), 0) + sizes[b]
                else:
                    seg = grouped[i, starts[b]: starts[b] + sizes[b], s]
                    for k in seg[seg >= 0].tolist():
                        steps[k] = steps.get(k, 0) + 1
            here.append((atom[s], list(steps.items())))
        options.append(here)
    return options
