"""The ``almat`` command line: set-up check, the learner's notebooks, enumeration, scoring, data
regeneration and DFT export."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path

from almat.dft import INPUT_SETS
from almat.enumeration import BACKENDS, DEFAULT_LIMIT
from almat.errors import AlmatError
from almat.files import (
    OutputError,
    check_output_file,
    earlier_output,
    index_names,
    staged_output,
    write_atomic,
    write_new,
)
from almat.structures import MIN_LI_LI
from almat.notebooks import copy_notebooks

#: Packages whose versions the set-up check prints.
CHECKED_PACKAGES = ("almat", "torch", "chgnet", "pymatgen", "numpy", "scikit-learn",
                    "pandas", "ipywidgets", "jupyterlab", "matplotlib")
#: Pythons the lesson installs on from wheels alone (pyproject's requires-python).
SUPPORTED_PYTHONS = ((3, 11), (3, 12))


def platform_problem(version: tuple[int, int] | None = None, system: str | None = None,
                     machine: str | None = None) -> str | None:
    """What to do when this Python or computer cannot run the lesson; None when it can.

    Parameters
    ----------
    version
        ``(major, minor)`` of Python; this interpreter's by default.
    system, machine
        ``platform.system()`` and ``platform.machine()``; this computer's by default.
    """
    version = tuple(sys.version_info[:2]) if version is None else tuple(version)
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    if system == "Darwin" and machine == "x86_64":
        return ("This Python is an Intel (x86-64) build for macOS, and PyTorch has published no "
                "packages for Intel Macs since version 2.3 (CHGNet needs 2.4 or newer). On an "
                "Apple-silicon Mac, install the arm64 Python from python.org and start again; on an "
                "Intel Mac, use the workshop server (setup.md, 'If the install fails on the day').")
    if version not in SUPPORTED_PYTHONS:
        low, high = (".".join(map(str, v)) for v in (SUPPORTED_PYTHONS[0], SUPPORTED_PYTHONS[-1]))
        why = ("is too new: CHGNet publishes no package for it yet" if version > SUPPORTED_PYTHONS[-1]
               else "is too old for the lesson's packages")
        return (f"Python {version[0]}.{version[1]} {why}. Install Python {high} (or {low}) beside it "
                "and make the lesson's virtual environment with that one, as setup.md shows for "
                "Windows, macOS and Linux; or use the workshop server.")
    return None


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

    problem = platform_problem()
    say(problem is None, f"Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()} ({sys.executable})", problem or "")
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

    say(None if _version("icet") is None else True,
        f"icet {_version('icet') or 'not installed'} (a reference enumerator for the tests; "
        "the lesson does not need it)")
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


#: The file that lists what ``almat enumerate`` wrote into its --out folder, and its header.
INDEX_NAME = "index.csv"
INDEX_HEADER = "name,n_atoms,formula"


def _previous_run(out: Path) -> list[Path]:
    """Check ``--out`` before enumerating; return the files of an earlier run there, to be replaced.

    A folder that is empty, or holds only what an earlier ``almat enumerate``
    listed in its index, is ours to fill; anything else in it is refused
    (:func:`almat.files.earlier_output`).
    """
    names = index_names(Path(out) / INDEX_NAME, INDEX_HEADER)
    owned = None if names is None else {f"{n}{ext}" for n in names for ext in (".cif", ".json")}
    return earlier_output(out, INDEX_NAME, owned, "almat enumerate")


def _write_orderings(out: Path, structures: list, fmt: str, previous: list[Path]) -> None:
    """Write all orderings into a hidden staging folder, then swap them in; the index goes last.

    Until the last step the earlier results stay as they were; a failure
    (full disk, Ctrl-C) removes the staging folder and leaves no new file.
    """
    rows = [INDEX_HEADER]
    with staged_output(out, previous) as staging:
        for i, s in enumerate(structures):
            name = f"ordering-{i:05d}"
            text = s.to(fmt="cif") if fmt == "cif" else s.to_json()
            try:
                write_new(staging / f"{name}.{fmt}", text)
            except OutputError as exc:
                raise OutputError(f"{exc} No new ordering was left in '{out}'; its earlier content "
                                  "is untouched.") from exc
            rows.append(f"{name},{len(s)},{s.composition.reduced_formula}")
    write_atomic(out / INDEX_NAME, "\n".join(rows) + "\n")


def _cmd_enumerate(args: argparse.Namespace) -> int:
    from almat.enumeration import NoOrderingsError, enumerate_orderings
    from almat.structures import (
        check_charge_balance,
        check_occupancies,
        load_parent,
        set_occupancy,
    )

    out = Path(args.out)
    previous = _previous_run(out)
    parent = load_parent(args.cif)
    source = "the shipped Li6PS5Cl" if args.cif is None else f"'{args.cif}'"
    occupancy = 0.5 if args.occupancy is None and args.cif is None else args.occupancy
    if occupancy is not None:
        parent = set_occupancy(parent, occupancy)
    check_occupancies(parent, source)
    check_charge_balance(parent, source)
    structures = enumerate_orderings(parent, args.max_cell_size, args.min_cell_size,
                                     backend=args.backend, sort_by=args.sort_by, limit=args.limit,
                                     min_distance=args.min_distance)
    if not structures:
        why = ("fits them" if args.min_distance is None else f"keeps every two atoms on disordered sites "
               f"{args.min_distance:g} Å apart (periodic images included)")
        raise NoOrderingsError(
            f"No ordering of {source} at cell sizes {args.min_cell_size} to {args.max_cell_size} {why}, so "
            f"nothing was written. Use a smaller --min-distance ({MIN_LI_LI} separates Li6PS5Cl's 48h pairs) or "
            "other cell sizes."
        )
    _write_orderings(out, structures, args.format, previous)
    kept = "" if occupancy is not None else " (occupancies as in the file)"
    replaced = f"; replaced the {len(previous) - 1} files of the earlier run" if previous else ""
    print(f"Wrote {len(structures)} orderings of {source}{kept} to {out}/{replaced}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from almat.scoring import score_structures
    from almat.structures import check_charge_balance, read_structure

    paths = [Path(p) for p in args.structures]
    seen: dict[Path, Path] = {}
    for p in paths:
        if seen.setdefault(p.resolve(), p) is not p:
            raise OutputError(f"'{p}' is given twice (also as '{seen[p.resolve()]}'); give each file once.")
    out = Path(args.out)
    arrays = out.with_suffix(".json") if args.forces or args.stress else None
    if arrays is not None and arrays.resolve() == out.resolve():
        raise OutputError(f"--out '{out}' ends in .json, where the forces/stress go ('{arrays}'); "
                          f"name the CSV of energies e.g. '{out.with_suffix('.csv')}'.")
    check_output_file(out, inputs=paths)
    if arrays is not None:
        check_output_file(arrays, inputs=paths)
    structures = [read_structure(p) for p in paths]
    for p, s in zip(paths, structures):
        check_charge_balance(s, f"'{p}'")
    df = score_structures(structures, forces=args.forces, stress=args.stress, progress=True,
                          names=[f"'{p}'" for p in paths])
    df.insert(0, "file", [str(p) for p in paths])
    scalar = df.drop(columns=[c for c in ("forces", "stress", "magmoms") if c in df])
    write_atomic(out, scalar.to_csv(index=False, float_format="%.6f"))
    written = [str(out)]
    if arrays is not None:
        extra = {str(p): {k: df.loc[i, k].tolist() for k in ("forces", "stress") if k in df}
                 for i, p in enumerate(paths)}
        write_atomic(arrays, json.dumps(extra))
        written.append(str(arrays))
    print(f"Scored {len(df)} structures -> {' and '.join(written)}")
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    copied = copy_notebooks(args.folder, overwrite=args.overwrite)
    print(f"{len(copied)} lesson notebooks in {args.folder}: {', '.join(p.name for p in copied)}")
    print(f"Work in these copies, which are yours to change: jupyter lab {args.folder}")
    return 0


def _cmd_build_data(args: argparse.Namespace) -> int:
    from almat.structures import write_parent_cif

    print(f"Wrote {write_parent_cif()}")
    return 0


def _cmd_build_pool(args: argparse.Namespace) -> int:
    from almat.pool import POOL_DIR
    from almat.pool_build import BuildError, build_pool
    from almat.relaxation import RelaxSettings

    if args.replace_shipped and args.out is not None:
        raise BuildError(f"--replace-shipped writes into the package's own data folder ({POOL_DIR}), "
                         f"so --out {args.out} would be ignored; give one of the two.")
    out = POOL_DIR if args.replace_shipped else Path(args.out or "pools")
    settings = RelaxSettings(fmax=args.fmax, steps=args.steps, relax_cell=not args.fixed_cell)
    pool = build_pool(out, cell_sizes=args.cell_sizes, min_distance=args.min_distance,
                      screen_size=None if args.no_screen else args.screen_size,
                      screen_sample=args.screen_sample, seed=args.seed, settings=settings,
                      scheduler=args.scheduler, n_workers=args.workers,
                      torch_threads=args.threads, replace_shipped=args.replace_shipped)
    print(f"Wrote {pool!r} to {out}/")
    return 0 if pool.reference["converged"].all() else 1


def _cmd_export_dft(args: argparse.Namespace) -> int:
    from almat.dft import best_candidates, export_dft
    from almat.pool import POOL_DIR, load_pool

    directory = POOL_DIR if args.pool_dir is None else Path(args.pool_dir)
    pool = load_pool(args.pool, directory)
    top = best_candidates(pool, args.top, labels=args.labels)
    written = export_dft(pool, top["index"], args.out, input_set=args.input_set,
                         potcar_spec=True if args.potcar_spec else None,
                         relaxations=directory / f"{pool.name}.relaxations.jsonl", progress=True)
    source = f"labelled in '{args.labels}'" if args.labels else f"of pool {pool.name!r}"
    fewer = f" (only {len(top)} labelled)" if len(top) < args.top else ""
    potcar = "POTCAR.spec" if "POTCAR.spec" in written["files"].iloc[0].split() else "POTCAR"
    print(f"Wrote {args.input_set} inputs with {potcar} for the {len(written)} lowest candidates "
          f"{source}{fewer} to {args.out}/: {', '.join(written['id'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="almat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-setup", help="check the installation before a workshop")
    n = sub.add_parser("notebooks", help="copy the lesson's notebooks into a folder to work in",
                       description="Copy the lesson's notebooks, as this installation carries "
                                   "them, into FOLDER (created if needed). A notebook already "
                                   "there that differs from the lesson's is never replaced "
                                   "unless --overwrite is given.")
    n.add_argument("folder", help="the folder to work in, e.g. almat-lesson")
    n.add_argument("--overwrite", action="store_true",
                   help="replace notebooks in FOLDER that differ from the lesson's (your work "
                        "in them is lost)")
    e = sub.add_parser("enumerate", help="enumerate Li/vacancy orderings and write them out")
    e.add_argument("--cif", default=None, help="parent CIF (default: the shipped Li6PS5Cl)")
    e.add_argument("--occupancy", type=float, default=None,
                   help="occupancy of the disordered sites (default: 0.5 for the shipped parent, "
                        "the file's own occupancies with --cif)")
    e.add_argument("--max-cell-size", type=int, default=1)
    e.add_argument("--min-cell-size", type=int, default=1)
    e.add_argument("--backend", default="auto", choices=BACKENDS)
    e.add_argument("--min-distance", type=float, default=None, metavar="ANGSTROM",
                   help=f"no two atoms on disordered sites closer than this (e.g. {MIN_LI_LI} for Li6PS5Cl)")
    e.add_argument("--sort-by", default=None, choices=["ewald"])
    e.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    e.add_argument("--format", default="cif", choices=["cif", "json"])
    e.add_argument("--out", default="orderings")
    s = sub.add_parser("score", help="score structure files with CHGNet into a CSV")
    s.add_argument("structures", nargs="+", help="CIF/POSCAR/JSON files")
    s.add_argument("--forces", action="store_true")
    s.add_argument("--stress", action="store_true")
    s.add_argument("--out", default="scores.csv",
                   help="CSV of energies; with --forces/--stress the arrays go to the same name .json")
    sub.add_parser("build-data", help="write data/Li6PS5Cl.cif from the published facts")
    b = sub.add_parser(
        "build-pool", help="build the relaxed pool and the screening set (about an hour on 2 cores)",
        description="Enumerate the allowed orderings, relax each with CHGNet on a Dask cluster "
                    "(appending every result to OUT/li6ps5cl.relaxations.jsonl, so the same command "
                    "resumes a killed build), and write OUT/li6ps5cl.* and the screening set. Every "
                    "option and OUT are checked first: OUT must be new, empty or this same build's. "
                    "Exit status 1 if some relaxations did not converge (their energies are NaN).")
    b.add_argument("--out", default=None,
                   help="output folder (default: ./pools); a folder of another build is refused")
    b.add_argument("--replace-shipped", action="store_true",
                   help="write into the package's own data folder, replacing the shipped pools")
    b.add_argument("--cell-sizes", type=int, nargs="+", default=[1, 2])
    b.add_argument("--min-distance", type=float, default=MIN_LI_LI,
                   help=f"shortest Li-Li distance (Å; default {MIN_LI_LI})")
    b.add_argument("--screen-size", type=int, default=3)
    b.add_argument("--screen-sample", type=int, default=2000)
    b.add_argument("--no-screen", action="store_true", help="skip the screening set")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--fmax", type=float, default=0.05, help="force threshold (eV/Å)")
    b.add_argument("--steps", type=int, default=500, help="most FIRE steps per relaxation")
    b.add_argument("--fixed-cell", action="store_true", help="relax atoms only")
    b.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler (default: a LocalCluster here)")
    b.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core)")
    b.add_argument("--threads", type=int, default=1, help="torch threads per relaxation")
    x = sub.add_parser(
        "export-dft", help="write VASP inputs for the best candidates, from their relaxed structures",
        description="Write VASP inputs (Materials Project settings) for the lowest-energy candidates "
                    "of a campaign's labels file, or of the pool, starting from their CHGNet-relaxed "
                    "structures: OUT/<id>/ with INCAR, KPOINTS, POSCAR, POTCAR (or POTCAR.spec "
                    "without a POTCAR library, PMG_VASP_PSP_DIR) and provenance.json.")
    x.add_argument("--top", type=int, default=5, help="how many candidates (default 5)")
    x.add_argument("--labels", default=None,
                   help="a campaign's labels file (default: the pool's relaxed CHGNet energies)")
    x.add_argument("--pool", default="li6ps5cl", help="pool name (default li6ps5cl)")
    x.add_argument("--pool-dir", default=None,
                   help="folder of the pool and its relaxations file (default: the shipped pools)")
    x.add_argument("--input-set", default=INPUT_SETS[0], choices=INPUT_SETS)
    x.add_argument("--potcar-spec", action="store_true",
                   help="write POTCAR.spec even where a POTCAR library is configured")
    x.add_argument("--out", default="dft", help="output folder (default: ./dft)")
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"almat: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``almat`` command.

    Every refusal (:class:`almat.AlmatError`) and input/output failure is
    printed as one line naming the input and what to do, with exit status 2;
    Ctrl-C exits with 130. Warnings are printed as one line each.
    """
    args = build_parser().parse_args(argv)
    handlers = {"notebooks": _cmd_notebooks, "enumerate": _cmd_enumerate, "score": _cmd_score,
                "build-data": _cmd_build_data, "build-pool": _cmd_build_pool,
                "export-dft": _cmd_export_dft}
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            if args.command == "check-setup":
                return 1 if check_setup() else 0
            return handlers[args.command](args)
        except AlmatError as exc:
            print(f"almat {args.command}: {exc}", file=sys.stderr)
        except OSError as exc:
            where = f" '{exc.filename}'" if exc.filename else ""
            print(f"almat {args.command}: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print(f"almat {args.command}: interrupted; no partial output was left looking complete.",
                  file=sys.stderr)
            return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
