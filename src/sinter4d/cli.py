"""The ``sinter4d`` command line.

Argument parsing and printing live here only; every command calls library
functions that return values. A user error (:class:`~sinter4d.errors.InputError`)
prints one line to stderr and exits with status 2, never a traceback; an
``OSError`` the system raises (permission denied, disk full) and a worker
process killed (out of memory) print one line and exit with status 1. Any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from . import __version__
from ._cores import worker_count
from .errors import InputError
from .runfolder import STAGE_NAMES, STAGES, FitFolder, RunFolder, SweepFolder, mrc_beside, role_label, stage


def _cmd_dose(args: argparse.Namespace) -> int:
    from .acquisition import dose_e_per_nm2, electrons_per_series
    from .checks import check_int, check_positive

    check_positive(args.current, "--current", allow_zero=True)
    check_positive(args.dwell, "--dwell")
    for value, name in ((args.pixels, "--pixels"), (args.pixels_y, "--pixels-y"), (args.tilts, "--tilts")):
        if value is not None:
            check_int(value, name, minimum=1)
    check_positive(args.pixel_size, "--pixel-size")
    n_pixels = args.pixels * (args.pixels if args.pixels_y is None else args.pixels_y)
    electrons = electrons_per_series(
        probe_current_pA=args.current, dwell_time_ns=args.dwell, n_pixels=n_pixels, n_images=args.tilts
    )
    dose = dose_e_per_nm2(
        probe_current_pA=args.current,
        dwell_time_ns=args.dwell,
        n_pixels=n_pixels,
        n_images=args.tilts,
        pixel_size_nm=args.pixel_size,
    )
    per_pixel = electrons / (n_pixels * args.tilts)
    print(f"electrons per series: {electrons:.3g} e")
    print(f"dose per series:      {dose:.1f} e/nm^2")
    print(f"per pixel per image:  {per_pixel:.2f} e ({dose / args.tilts:.2f} e/nm^2)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .experiments import simulate_run

    out = simulate_run(args.spec, args.out, progress=not args.quiet, n_jobs=args.jobs)
    print(f"simulated run in {out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .io.atomic import check_target
    from .io.netcdf import write_dataset_atomic
    from .io.stacks import read_tilt_series

    if len(args.stack) == 1 and args.stack[0].lower().endswith(".csv"):
        return _import_manifest(args)
    check_target(args.out)  # a bad --out is refused before a large stack is read
    stack = args.stack[0] if len(args.stack) == 1 else args.stack
    ds = read_tilt_series(stack, angles=args.angles, pixel_size_nm=args.pixel_size,
                          tilt_axis_rotation_deg=args.tilt_axis_rotation)
    out = write_dataset_atomic(ds, args.out)
    a, angles = ds.attrs, ds.tilt_angle.values

    def origin(key):
        return "given" if a[key + "_source"] == "argument" else f"{a[key + '_origin']}, {a[key + '_source']}"

    axis = (f"tilt axis {a['tilt_axis_rotation_deg']:g} deg from y ({origin('tilt_axis_rotation')})"
            if "tilt_axis_rotation_deg" in a else "tilt axis not given (the pipeline finds it)")
    print(f"{out}: {ds.sizes['tilt']} images of {ds.sizes['y']} x {ds.sizes['x']} px ({a['source_format']})\n"
          f"  pixel size {a['pixel_size_nm']:g} nm ({origin('pixel_size')})\n"
          f"  {angles.size} tilt angles {angles.min():g}..{angles.max():g} deg ({origin('angles')})\n"
          f"  {axis}\n  dark level {a['dark_level']:g} (kept in counts; the pipeline subtracts it)")
    return 0


def _import_manifest(args: argparse.Namespace) -> int:
    from .experiments.manifest import import_manifest

    manifest = args.stack[0]
    given = [opt for opt, value in (("--angles", args.angles), ("--pixel-size", args.pixel_size),
                                    ("--tilt-axis-rotation", args.tilt_axis_rotation)) if value is not None]
    if given:
        raise InputError(f"{manifest}: {given[0]} is for a single stack; a manifest gives it per row")
    run = import_manifest(manifest, args.out)
    print(f"{run.path}: {len(run.tilt_files())} tilt series imported from {manifest}; "
          f"next: sinter4d run {run.path} [--spec SETTINGS.toml] [--fit FIT.toml]")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from .experiments.reconstruct import reconstruct_path

    overrides = {"method": args.method, "iterations": args.iterations, "align_method": args.align}
    if args.no_denoise:
        overrides["denoise"] = False
    mrc = () if args.no_mrc else ("volume", "binary") if args.mrc_binary else ("volume",)
    outs = reconstruct_path(args.path, out=args.out, overrides=overrides, progress=not args.quiet, mrc=mrc,
                            scheduler=args.scheduler, n_workers=args.workers)
    print(f"{len(outs)} reconstruction(s): {outs[0].parent}" + (f" (and {', '.join(mrc)} as MRC)" if mrc else ""))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .experiments.reconstruct import export_mrc

    variable = "binary" if args.binary else "volume"
    out = export_mrc(args.recon, args.mrc, variable=variable)
    print(f"{out}: {variable} of {args.recon} as MRC (voxel size in the header, in angstrom)")
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    from .experiments.measure import measure_run

    out = measure_run(args.path, out=args.out, progress=not args.quiet, calibration=args.calibration)
    print(f"metrics in {out}" + (f" (calibrated with {args.calibration})" if args.calibration else ""))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .experiments.calibrate import calibrate_run, load_choose_card

    twins = {} if args.twins is None else {"n_twins": args.twins}
    if args.twin_series is not None:
        twins["twin_series"] = args.twin_series
    choose = None if args.choose is None else load_choose_card(args.choose)
    out = calibrate_run(args.source, args.out, scheduler=args.scheduler, force=args.force, progress=not args.quiet,
                        choose=choose, twin_pixels=args.twin_pixels, **twins)
    print(f"calibration in {out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .experiments.validate import validate_run

    out = validate_run(args.run, progress=not args.quiet)
    print(f"validation in {out}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from .assimilation import fit

    result = fit(args.data, args.spec, args.out, progress=not args.quiet, calibration=args.calibration,
                 n_jobs=args.jobs)
    conv = result.convergence
    print(result.summary.to_string())
    print(f"acceptance {float(conv.acceptance.mean()):.2f}; N/tau {conv.n_over_tau:.0f}; posterior in {result.posterior_path}")
    return 0


def _posterior_of(path: str) -> Path:
    """A fit's ``posterior.nc``: the file itself, or the one in a fit folder."""
    p = Path(path)
    if not p.is_dir():
        return p
    posterior = FitFolder(p).posterior
    if not posterior.is_file():
        raise InputError(f"{p}: no {posterior.name} (not a fit folder, or its fit has not finished)")
    return posterior


def _fit_labels(paths: list[Path], given: list[str] | None) -> list[str]:
    """The fits' names: ``given``, else each fit folder's name (with its parent's when two share one)."""
    if given is not None:
        if len(given) != len(paths):
            raise InputError(f"--names gives {len(given)} name(s) for {len(paths)} fits")
        labels = list(given)
    else:
        posterior = FitFolder(".").posterior.name
        labels = [p.parent.name if p.name == posterior else p.stem for p in paths]
        if len(set(labels)) < len(labels):  # e.g. two runs' fit/ folders: runA/fit, runB/fit
            labels = [f"{p.parent.parent.name}/{p.parent.name}" if p.name == posterior else f"{p.parent.name}/{p.stem}"
                      for p in paths]
    if len(set(labels)) < len(labels):
        raise InputError(f"the fits' names {labels} repeat; give each its own with --names")
    return labels


def _cmd_compare(args: argparse.Namespace) -> int:
    import warnings

    from .assimilation import compare_fits
    from .io.atomic import write_text_atomic

    paths = [_posterior_of(f) for f in args.fits]
    names = _fit_labels(paths, args.names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's Pareto-k warning: the table's own `warning` column
        table = compare_fits(dict(zip(names, paths)), ic=args.ic)
    columns = [c for c in ("rank", f"elpd_{args.ic}", f"p_{args.ic}", "elpd_diff", "dse", "weight", "warning")
               if c in table.columns]
    print(table[columns].to_string(float_format=lambda v: f"{v:.2f}"))
    best = table.index[0]
    print(f"best by {args.ic.upper()}: {best}; elpd_diff is each fit's distance below it, dse that distance's "
          f"s.e.; warning: a Pareto k above 0.7")
    if args.out:
        print(f"table in {write_text_atomic(args.out, table.to_csv())}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiments import run_experiment, run_imported

    stages = tuple(args.stages.split(",")) if args.stages else None
    kwargs = {"stages": stages} if stages else {}
    kwargs.update(scheduler=args.scheduler, n_workers=args.workers, n_jobs=args.jobs)
    worker_count(args.jobs)  # a bad --jobs is one line before any stage starts
    if Path(args.spec).is_dir():
        if args.out is not None and Path(args.out).resolve() != Path(args.spec).resolve():
            raise InputError(f"{args.spec}: a run folder is run in place; drop --out")
        result = run_imported(args.spec, settings=args.settings, fit=args.fit, force=args.force,
                              progress=not args.quiet, **kwargs)
    else:
        if args.out is None:
            raise InputError(f"{args.spec}: --out RUNDIR is required with an experiment spec")
        if args.settings is not None or args.fit is not None:
            raise InputError(f"{args.spec}: --spec and --fit are for an imported run folder; an experiment spec "
                             f"holds its [pipeline] and [fit] tables")
        result = run_experiment(args.spec, args.out, force=args.force, progress=not args.quiet, **kwargs)
    for stage, entry in result.stages.items():
        print(f"{stage:12s} {entry['status']:8s} {entry['seconds']:8.1f} s")
    print(f"run folder {result.run_dir} ({result.seconds:.0f} s); log in {RunFolder(result.run_dir).log}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import xarray as xr

    from .experiments.sweep import run_sweep

    out = run_sweep(args.spec, args.out, scheduler=args.scheduler, force=args.force, progress=not args.quiet)
    with xr.open_dataset(out) as ds:
        status = ds["status"].values.ravel().astype(str)
    failed = int((status != "ok").sum())
    print(f"{status.size - failed} cell(s) ok, {failed} failed; sweep results in {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    out = build_report(args.run, progress=not args.quiet)
    print(f"report in {out}")
    return 0


def _fit_files() -> str:
    """The fit folder's chain and posterior by name, for the help text."""
    fit = RunFolder(".").fit
    return f"{fit.chain.name}, {fit.posterior.name}"


#: The ``--scheduler`` option's help, and the default cluster of the commands that always use Dask.
_SCHEDULER = "address of a running Dask scheduler, whose workers see the same files"
_LOCAL_CLUSTER = "a LocalCluster of one single-threaded worker per core"


def _add_cluster_options(p: argparse.ArgumentParser, what: str, default: str = "this process") -> None:
    """``--scheduler`` and ``--workers`` of the commands that reconstruct in this process by default."""
    p.add_argument("--scheduler", default=None, help=f"{_SCHEDULER}: {what} go to its workers (default: {default})")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"{what} go to a LocalCluster of N single-threaded workers (one series each; "
                        "ignored with --scheduler)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sinter4d`` (one sub-command per stage)."""
    parser = argparse.ArgumentParser(
        prog="sinter4d",
        description="Simulation and data-assimilation testbed for in-situ (4D) electron tomography of sintering.",
    )
    parser.add_argument("--version", action="version", version=f"sinter4d {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("dose", help="electrons and dose (e/nm^2) of one tilt series")
    p.add_argument("--current", type=float, required=True, help="probe current (pA)")
    p.add_argument("--dwell", type=float, required=True, help="dwell time per pixel (ns)")
    p.add_argument("--pixels", type=int, required=True, help="image edge in pixels (square image)")
    p.add_argument("--pixels-y", type=int, default=None, help="image height in pixels when not square")
    p.add_argument("--tilts", type=int, required=True, help="number of images in the series")
    p.add_argument("--pixel-size", type=float, required=True, help="pixel size (nm)")
    p.set_defaults(func=_cmd_dose)

    p = sub.add_parser("simulate", help=f"simulate a run: {stage('simulate').help}")
    p.add_argument("spec", help="experiment spec (TOML), e.g. experiments/quick.toml")
    p.add_argument("--out", required=True, help="run folder (created; an interrupted run resumes)")
    p.add_argument("--jobs", type=int, default=-1, metavar="N",
                   help="time steps simulated at once, one worker process each (default -1: one per core; 1: one "
                        "after another in this process, for a machine without the memory of two); the files do not "
                        "depend on it")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("import", help="turn a microscope's tilt-series stack into a tilt-series file",
                       description="Read a tilt series (MRC/IMOD/FEI/SerialEM, TIFF/ImageJ, Gatan DM3/DM4, "
                       "Velox EMD, TIA SER, HyperSpy) and write the tilt-series file. Pixel size, angles and "
                       "tilt-axis angle come from the options, else from the file's metadata or the files beside "
                       "it (NAME.rawtlt/.tlt, NAME.mdoc, an FEI NAME.txt log); when they disagree the option wins "
                       "and a warning says so. The raw values are kept; the dark (vacuum) level is recorded. "
                       "A manifest .csv (columns stack, angles, pt_time_s, temperature_C[, reference, "
                       "pixel_size_nm, tilt_axis_rotation_deg]) imports a whole 4D experiment into a run folder.")
    p.add_argument("stack", nargs="+",
                   help="the stack file, several single-image files (one per tilt, in acquisition order), "
                   "or an experiment manifest (.csv)")
    p.add_argument("--angles", default=None,
                   help="text file of tilt angles (deg), one per line (IMOD .rawtlt); default: from the files")
    p.add_argument("--pixel-size", type=float, default=None, help="pixel size (nm); default: from the files")
    p.add_argument("--tilt-axis-rotation", type=float, default=None, metavar="DEG",
                   help="in-plane tilt-axis angle, deg from the image y axis towards +x (0: along y, 90: along x); "
                   "default: from the files, else found by the pipeline")
    p.add_argument("--out", required=True, help=f"tilt-series file to write (.nc); for a manifest the run folder "
                                                 f"({role_label('tilts')}, {role_label('manifest')})")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("reconstruct", help="denoise, align, find the tilt axis, reconstruct and binarise")
    p.add_argument("path", help=f"run folder (every {role_label('tilts')} -> {role_label('recon')}) or one tilt-series file")
    p.add_argument("--method", choices=["tv", "pdhg", "sirt", "fbp"], default=None, help="algorithm (default: the spec's, tv)")
    p.add_argument("--iterations", type=int, default=None, help="iterations of tv/sirt (default 300)")
    p.add_argument("--align", choices=["xcorr", "mattes"], default=None, help="registration of adjacent tilts")
    p.add_argument("--no-denoise", action="store_true", help="skip BM3D")
    p.add_argument("--out", default=None, help="output file when PATH is a file")
    p.add_argument("--no-mrc", action="store_true", help=f"skip the MRC copy of each volume ({mrc_beside('NAME.nc').name})")
    p.add_argument("--mrc-binary", action="store_true",
                   help=f"also write the binary as MRC ({mrc_beside('NAME.nc', binary=True).name})")
    _add_cluster_options(p, "the tilt series")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("export", help="a reconstruction as MRC for IMOD's 3dmod, tomviz or Chimera")
    p.add_argument("recon", help=f"reconstruction file ({role_label('recon')})")
    p.add_argument("--mrc", default=None, help=f"MRC file to write (default {mrc_beside('NAME.nc').name} beside it)")
    p.add_argument("--binary", action="store_true", help="the binary volume (0/1 bytes) instead of the volume")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("measure", help="particles, pairs and the paper's Fig. 7 metrics of every reconstruction")
    p.add_argument("path", help=f"run folder ({role_label('recon')} -> {role_label('metrics')}) or one reconstruction file")
    p.add_argument("--out", default=None, help=f"metrics file to write (default RUNDIR/{role_label('metrics')})")
    p.add_argument("--calibration", default=None,
                   help="calibration.nc (sinter4d calibrate): add the calibrated neck radius and distance with their s.d.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("calibrate", help="simulate twins of a run's acquisition and fit the pipeline's reading model")
    p.add_argument("source", help="run folder (simulated or imported) or a tilt-series file (TILTS.nc)")
    p.add_argument("--out", required=True, help="calibration file to write (calibration.nc); the twins run in "
                                                "NAME_twins/ beside it, and a rerun resumes them")
    p.add_argument("--twins", type=int, default=None, help="how many (reporting) twins (default 4)")
    p.add_argument("--twin-pixels", type=int, default=None, metavar="PX",
                   help="twins on a field of PX detector pixels a side, cut from the run's at its pixel size, dose "
                        "and tilts (default the run's field; the cost goes as the area)")
    p.add_argument("--twin-series", type=int, default=None, metavar="N",
                   help="tilt series per twin, spread over the run's: the first, middle and last (3, the default); "
                        "1: the middle one")
    p.add_argument("--choose", default=None, metavar="CARD.toml",
                   help="choose the pipeline settings first: the card's [choose] grid on choosing twins "
                        "(NAME_choose/), kept apart from the reporting twins (experiments/choose_quick.toml)")
    p.add_argument("--scheduler", default=None, help=f"{_SCHEDULER} (default: {_LOCAL_CLUSTER})")
    p.add_argument("--force", action="store_true", help="run the twins again")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("validate", help=f"validate a run: {stage('validate').help}")
    p.add_argument("run", help=f"run folder holding {', '.join(role_label(r) for r in stage('validate').inputs)}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("fit", help="fit a sintering model card to neck/distance trajectories with emcee")
    p.add_argument("data", help=f"a run's {role_label('metrics')} or {role_label('truth')}, or a CSV trajectory table")
    p.add_argument("--spec", required=True, help="fit spec (TOML), e.g. assimilation/quick.toml")
    p.add_argument("--out", required=True, help=f"output folder ({_fit_files()}, figures); a rerun resumes")
    p.add_argument("--calibration", default=None,
                   help="calibration.nc (sinter4d calibrate): its reading model is the observation model of every "
                        "fitted variable (the neck's scatter too; the distance keeps the spec's sigma)")
    p.add_argument("--jobs", type=int, default=-1, metavar="N",
                   help="worker processes evaluating the walkers (default -1: one per core; 1: this process); "
                        "the chain does not depend on it")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("compare", help="fits of the same data compared by LOO (or WAIC): which predicts best")
    p.add_argument("fits", nargs="+", help=f"two or more fit folders (sinter4d fit --out) or their "
                                            f"{FitFolder('.').posterior.name} files")
    p.add_argument("--names", nargs="+", default=None, help="a name for each fit (default: its folder's name)")
    p.add_argument("--ic", choices=("loo", "waic"), default="loo", help="information criterion (default: loo)")
    p.add_argument("--out", default=None, help="also write the table as CSV")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("run", help=f"every stage of a spec: {', '.join(STAGE_NAMES)}")
    p.add_argument("spec", help="experiment spec (TOML), e.g. experiments/quick.toml; or an imported run folder "
                                f"(every stage but {', '.join(s.name for s in STAGES if s.needs_truth)})")
    p.add_argument("--out", default=None,
                   help="run folder of a spec (created; a killed run resumes where it stopped)")
    p.add_argument("--spec", dest="settings", default=None,
                   help="settings card (TOML: [pipeline], [fit], [calibration]) of an imported run folder")
    p.add_argument("--fit", default=None, help="fit spec (TOML) fitted to an imported run's metrics")
    p.add_argument("--force", action="store_true", help="redo the stages even when their outputs exist")
    p.add_argument("--stages", default=None,
                   help=f"comma-separated subset of {','.join(STAGE_NAMES)}")
    _add_cluster_options(p, "the reconstruct stage's tilt series and the calibrate stage's twins",
                         default=f"the series in this process, the twins on {_LOCAL_CLUSTER}")
    p.add_argument("--jobs", type=int, default=-1, metavar="N",
                   help="processes or threads of each stage on this machine: time steps simulated at once, series "
                        "prepared ahead, images denoised at once, the fit's workers (default -1: one per core; 1: "
                        "this process alone, e.g. for a paper-size run on a machine without the memory of two)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="what-if sweep: one full run per cell of a grid of settings, on Dask")
    p.add_argument("spec", help="sweep spec (TOML), e.g. experiments/dose_sweep.toml")
    p.add_argument("--out", required=True, help=f"sweep folder: one run folder per cell, {SweepFolder('.').dataset.name}, heatmaps")
    p.add_argument("--scheduler", default=None, help=f"{_SCHEDULER} (default: {_LOCAL_CLUSTER})")
    p.add_argument("--force", action="store_true", help="rerun cells that already finished")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help=f"(re)build RUNDIR/{role_label('report')} from a run folder")
    p.add_argument("run", help="run folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        # the console keeps its level even when a run's log file asks the package for INFO
        handler.setLevel(level)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"sinter4d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenProcessPool:  # a worker was killed, most often by the kernel for memory
        print(f"sinter4d {args.command}: error: a worker process died (out of memory?); rerun the same command to "
              f"resume, with --jobs 1 if memory is short", file=sys.stderr)
        return 1
    except OSError as exc:  # the system refused: permission denied, disk full, a file vanished
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sinter4d {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sinter4d {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
