"""The ``almat`` command line: set-up check, enumeration, scoring and data regeneration."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from almat.enumeration import BACKENDS, DEFAULT_LIMIT

#: Packages whose versions the set-up check prints.
CHECKED_PACKAGES = ("almat", "torch", "chgnet", "pymatgen", "icet", "numpy", "scikit-learn",
                    "pandas", "ipywidgets", "jupyterlab", "matplotlib")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_setup(out=sys.stdout) -> int:
    """Print what a learner needs to know before the workshop; return the number of problems."""
    problems: list[str] = []

    def say(ok: bool | None, text: str, fix: str = "") -> None:
        mark = {True: "ok  ", False: "FAIL", None: "note"}[ok]
        print(f"[{mark}] {text}", file=out)
        if ok is False:
            problems.append(fix or text)
        elif fix and ok is None:
            print(f"       {fix}", file=out)

    say(sys.version_info >= (3, 10), f"Python {platform.python_version()} ({sys.executable})",
        "Use Python 3.10 or newer (the lesson is tested on 3.11).")
    for name in CHECKED_PACKAGES:
        v = _version(name)
        say(v is not None, f"{name} {v or 'not installed'}",
            f"Install {name}: `pip install -e .` from the lesson folder (torch first: "
            "`pip install torch==2.13.0`).")
    torch_v = _version("torch") or ""
    if "+cu" in torch_v or any(_version(p) for p in ("nvidia-cublas-cu12", "nvidia-cudnn-cu12")):
        say(None, "torch is a CUDA build (several GB).",
            "Fine with an NVIDIA GPU; on a laptop without one, the CPU build (see setup.md) "
            "saves several GB of disk.")
    try:
        from almat.enumeration import enumerate_orderings
        from almat.scoring import score_structures
        from almat.structures import load_parent, set_occupancy

        first = enumerate_orderings(set_occupancy(load_parent(), 0.5), 1)[0]
        energy = float(score_structures([first], cache=False)["energy_per_atom"].iloc[0])
        say(True, f"CHGNet loads offline and scores Li6PS5Cl: {energy:.3f} eV/atom")
    except Exception as exc:  # report, never crash the check
        say(False, f"CHGNet could not score the parent structure: {type(exc).__name__}: {exc}",
            "Reinstall chgnet (`pip install --force-reinstall chgnet`); its weights ship in the wheel.")
    try:
        import ipywidgets

        ok = int(ipywidgets.__version__.split(".")[0]) >= 8
        say(ok, f"ipywidgets {ipywidgets.__version__} importable",
            "The labeling app needs ipywidgets 8: `pip install 'ipywidgets>=8'`.")
    except ImportError:
        say(False, "ipywidgets missing", "`pip install 'ipywidgets>=8'`.")
    if _version("jupyterlab_widgets") is None:
        say(False, "jupyterlab_widgets missing: widgets will not render in JupyterLab",
            "`pip install jupyterlab_widgets` (it comes with ipywidgets 8).")
    from almat.enumeration import enumlib_available

    if enumlib_available():
        say(True, "enumlib (enum.x) found: backend 'enumlib' available")
    else:
        say(None, "enumlib not found: almat's own enumerator is used (all the lesson needs).",
            "conda/mamba users get enumlib from conda-forge via environment.yml.")
    try:
        from almat.pool import load_pool

        pool = load_pool()
        say(True, f"Shipped pool loads: {len(pool)} orderings")
    except Exception as exc:
        say(False, f"Shipped pool missing: {exc}", "Run `almat build-pool`, or re-clone the lesson.")
    print("", file=out)
    if problems:
        print(f"{len(problems)} problem(s) to fix before the workshop:", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
    else:
        print("All set: you are ready for the workshop.", file=out)
    return len(problems)


def _cmd_enumerate(args: argparse.Namespace) -> int:
    from almat.enumeration import enumerate_orderings
    from almat.structures import load_parent, set_occupancy

    parent = load_parent(args.cif)
    if args.occupancy is not None:
        parent = set_occupancy(parent, args.occupancy)
    structures = enumerate_orderings(parent, args.max_cell_size, args.min_cell_size,
                                     backend=args.backend, sort_by=args.sort_by, limit=args.limit,
                                     min_distance=args.min_distance)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, s in enumerate(structures):
        name = f"ordering-{i:05d}"
        if args.format == "cif":
            s.to(filename=str(out / f"{name}.cif"))
        else:
            (out / f"{name}.json").write_text(s.to_json())
        rows.append(f"{name},{len(s)},{s.composition.reduced_formula}")
    (out / "index.csv").write_text("name,n_atoms,formula\n" + "\n".join(rows) + "\n")
    print(f"Wrote {len(structures)} orderings to {out}/")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from almat.scoring import score_structures
    from almat.structures import read_structure

    paths = [Path(p) for p in args.structures]
    structures = [read_structure(p) for p in paths]
    df = score_structures(structures, forces=args.forces, stress=args.stress, progress=True)
    df.insert(0, "file", [str(p) for p in paths])
    scalar = df.drop(columns=[c for c in ("forces", "stress", "magmoms") if c in df])
    scalar.to_csv(args.out, index=False, float_format="%.6f")
    if args.forces or args.stress:
        extra = {str(p): {k: df.loc[i, k].tolist() for k in ("forces", "stress") if k in df}
                 for i, p in enumerate(paths)}
        Path(args.out).with_suffix(".json").write_text(json.dumps(extra))
    print(f"Scored {len(df)} structures -> {args.out}")
    return 0


def _cmd_build_data(args: argparse.Namespace) -> int:
    from almat.structures import write_parent_cif

    print(f"Wrote {write_parent_cif()}")
    return 0


def _cmd_build_pool(args: argparse.Namespace) -> int:
    from almat.pool import build_pool

    pool = build_pool(n_sample=args.n_sample, seed=args.seed, backend=args.backend)
    print(f"Wrote {pool!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="almat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-setup", help="check the installation before a workshop")
    e = sub.add_parser("enumerate", help="enumerate Li/vacancy orderings and write them out")
    e.add_argument("--cif", default=None, help="parent CIF (default: the shipped Li6PS5Cl)")
    e.add_argument("--occupancy", type=float, default=0.5, help="occupancy of the disordered sites")
    e.add_argument("--max-cell-size", type=int, default=1)
    e.add_argument("--min-cell-size", type=int, default=1)
    e.add_argument("--backend", default="auto", choices=BACKENDS)
    e.add_argument("--min-distance", type=float, default=None, metavar="ANGSTROM",
                   help="no two atoms on disordered sites closer than this (e.g. 2.0 for Li6PS5Cl)")
    e.add_argument("--sort-by", default=None, choices=["ewald"])
    e.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    e.add_argument("--format", default="cif", choices=["cif", "json"])
    e.add_argument("--out", default="orderings")
    s = sub.add_parser("score", help="score structure files with CHGNet into a CSV")
    s.add_argument("structures", nargs="+", help="CIF/POSCAR/JSON files")
    s.add_argument("--forces", action="store_true")
    s.add_argument("--stress", action="store_true")
    s.add_argument("--out", default="scores.csv")
    sub.add_parser("build-data", help="write data/Li6PS5Cl.cif from the published facts")
    b = sub.add_parser("build-pool", help="regenerate data/pools/li6ps5cl.* (minutes)")
    b.add_argument("--n-sample", type=int, default=3000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--backend", default="auto", choices=BACKENDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``almat`` command."""
    args = build_parser().parse_args(argv)
    handlers = {"enumerate": _cmd_enumerate, "score": _cmd_score, "build-data": _cmd_build_data,
                "build-pool": _cmd_build_pool}
    try:
        if args.command == "check-setup":
            return 1 if check_setup() else 0
        return handlers[args.command](args)
    except (ValueError, RuntimeError) as exc:
        print(f"almat {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
