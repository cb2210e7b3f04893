"""The ``kandisc batch`` command group (mounted by :mod:`kandisc.cli` as ``batch``).

Exit codes: 2 for a user error (bad spec, manifest or option; one line on stderr); 130 after Ctrl-C,
143 after SIGTERM, 129 after SIGHUP (runs are marked ``interrupted``; the same command resumes).
``run-one`` and ``run`` exit 1 when a fit failed (``run-one`` exits 2 when its row's data, config or
overrides are refused before the fit starts). ``status`` exits 0 when every run completed, 1 when
any failed or was interrupted, 3 while some are pending or running.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kandisc.cli_errors import user_errors
from kandisc.errors import ConfigError
from kandisc.signals import describe, exit_code, mark_reported

batch_app = typer.Typer(
    name="batch",
    help="Many fits from one manifest: plan a sweep, run it locally or on Slurm, collect the results.",
    no_args_is_help=True,
    add_completion=False,
)

ManifestArg = Annotated[Path, typer.Argument(help="manifest.csv, or the batch folder that holds it")]


def _stdout() -> Console:
    return Console(soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


_user_errors = user_errors()  # one error-to-exit-code convention for every command


@batch_app.command("plan")
@_user_errors
def plan_cmd(
    spec: Annotated[Path, typer.Argument(help="sweep spec YAML (config, set, data, sweep, seeds, out)")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="batch folder [default: spec 'out:' or batches/<spec>]")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing, different manifest")] = False,
) -> None:
    """Expand a sweep spec into BATCH_DIR/manifest.csv (one row per fit) and resolved configs."""
    from kandisc.batch.manifest import plan_batch, write_plan

    plan = plan_batch(spec, out)
    manifest = write_plan(plan, overwrite=overwrite)
    print(manifest)
    print(f"planned {len(plan.rows)} fits in {plan.batch_dir}", file=sys.stderr)


@batch_app.command("run-one")
@_user_errors
def run_one_cmd(
    manifest: ManifestArg,
    index: Annotated[
        int | None, typer.Option("--index", "-i", help="row index [default: $SLURM_ARRAY_TASK_ID]")
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", help="run rows INDEX .. INDEX+COUNT-1 in this one process")
    ] = 1,
) -> None:
    """Run manifest rows as `kandisc fit` would; a completed run is skipped, others are redone.

    With --count the rows run one after the other in this process, so kandisc and torch are
    imported once (a Slurm array task's chunk). Exit 2 if a row's input was refused, else 1 if a fit
    failed.
    """
    from kandisc.batch.local import run_one
    from kandisc.batch.manifest import read_manifest

    rows = read_manifest(manifest)
    if index is None:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        if task is None or not task.isdigit():
            raise ConfigError("give --index I (or run in a Slurm array job, which sets SLURM_ARRAY_TASK_ID)")
        index = int(task)
    if not 0 <= index < len(rows):
        raise ConfigError(f"--index {index} is out of range: the manifest has rows 0..{len(rows) - 1}")
    if not 1 <= count <= len(rows) - index:
        raise ConfigError(f"--count {count}: rows {index}.. of 0..{len(rows) - 1} allow 1 to {len(rows) - index}")
    invalid, failed = [], False
    for i in range(index, index + count):
        # Slurm stops a job (scancel, time limit) with SIGTERM; user_errors makes it an interrupt, so the
        # fit marks its run `interrupted` (status and a resubmission see it) instead of `running` forever.
        try:
            outcome = run_one(rows[i])
        except KeyboardInterrupt as err:
            mark_reported()
            print(f"{i:04d} {describe(err)} {rows[i].run_dir}", file=sys.stderr)
            raise typer.Exit(exit_code(err)) from None
        if outcome.invalid:
            invalid.append(f"row {i}: {outcome.error}")
            continue
        label = "skipped (completed)" if outcome.status == "skipped" else outcome.status
        print(f"{i:04d} {label} {outcome.run_dir}")
        if outcome.status not in ("completed", "skipped"):
            print(f"error: row {i}: {outcome.error}", file=sys.stderr)
            failed = True
    if invalid:
        for line in invalid[:-1]:
            print(f"error: {line}", file=sys.stderr)
        raise ConfigError(invalid[-1])
    if failed:
        raise typer.Exit(1)


class _Reporter:
    """Counts finished/failed jobs: a rich bar on a terminal, one plain line per job otherwise."""

    def __init__(self, total: int, console: Console) -> None:
        self.total, self.console = total, console
        self.finished = self.failed = 0
        self.progress = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )
            self.task = self.progress.add_task(self._describe(), total=total)

    def _describe(self) -> str:
        return f"fits ({self.failed} failed)"

    def __enter__(self) -> _Reporter:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, outcome) -> None:
        self.finished += 1
        bad = outcome.status not in ("completed", "skipped")
        self.failed += bad
        line = f"[{self.finished}/{self.total}] {outcome.index:04d} {outcome.status}"
        if outcome.status != "skipped":
            line += f" ({outcome.wall_seconds:.1f} s)"
        if bad:
            line += f": {outcome.error}"
        if self.progress is None:
            self.console.print(line, markup=False, highlight=False)
            return
        if bad:
            self.console.print(line, markup=False, style="red")
        self.progress.update(self.task, advance=1, description=self._describe())


@batch_app.command("run")
@_user_errors
def run_cmd(
    manifest: ManifestArg,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="parallel fits [default: cores // threads]")] = None,
    threads_per_job: Annotated[int, typer.Option(help="torch threads of each fit")] = 1,
    oversubscribe: Annotated[bool, typer.Option(help="allow jobs x threads above the core count")] = False,
) -> None:
    """Run every row of a manifest in a local process pool (completed runs are skipped)."""
    from kandisc.batch.local import available_cores, check_resources, run_batch
    from kandisc.batch.manifest import manifest_path, read_manifest
    from kandisc.batch.status import collect, counts, write_summary

    path = manifest_path(manifest)
    rows = read_manifest(path)
    if jobs is None:
        jobs = max(1, available_cores() // max(1, threads_per_job))
    check_resources(jobs, threads_per_job, oversubscribe)
    err = _stderr()
    interrupted: KeyboardInterrupt | None = None
    with _Reporter(len(rows), err) as report:
        try:
            outcomes = run_batch(rows, jobs, threads_per_job, on_done=report)
        except KeyboardInterrupt as err:
            interrupted, outcomes = err, []
    records = collect(rows)
    summary = write_summary(path.parent, records)
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts(records).items()))
    print(f"{len(rows)} runs: {tally}; summary: {summary}", file=sys.stderr)
    if interrupted:
        mark_reported()
        resume = "completed runs are kept; run the same command again to resume"
        print(f"{describe(interrupted)}: {resume}", file=sys.stderr)
        raise typer.Exit(exit_code(interrupted))
    if any(o.status not in ("completed", "skipped") for o in outcomes):
        raise typer.Exit(1)


@batch_app.command("slurm")
@_user_errors
def slurm_cmd(
    manifest: ManifestArg,
    partition: Annotated[str | None, typer.Option(help="Slurm partition [default: the cluster's]")] = None,
    time_min: Annotated[int, typer.Option(help="time limit of one array task, minutes")] = 60,
    cpus_per_task: Annotated[int, typer.Option(help="cores (and torch threads) per array task")] = 1,
    mem_gb: Annotated[float, typer.Option(help="memory per array task, GB")] = 4.0,
    array_parallelism: Annotated[
        int | None, typer.Option(help="at most K array tasks at once (%K) [default: no cap]")
    ] = None,
    chunk: Annotated[int, typer.Option(help="fits run one after the other in each array task")] = 1,
    job_name: Annotated[str | None, typer.Option(help="[default: kandisc-<batch folder>]")] = None,
    sbatch_arg: Annotated[
        list[str] | None, typer.Option(help="extra #SBATCH option, e.g. --account=proj (repeatable)")
    ] = None,
    submit: Annotated[bool, typer.Option(help="submit with sbatch and print the job id")] = False,
) -> None:
    """Write BATCH_DIR/submit.sbatch (a job array over the manifest); --submit also submits it."""
    from kandisc.batch.manifest import manifest_path, read_manifest
    from kandisc.batch.slurm import SlurmOptions, SubmitError, write_script
    from kandisc.batch.slurm import submit as sbatch_submit

    if submit and shutil.which("sbatch") is None:  # before writing anything: a failure leaves no script
        raise SubmitError("sbatch not found on PATH; run without --submit to write submit.sbatch, then submit it there")
    path = manifest_path(manifest)
    rows = read_manifest(path)
    opts = SlurmOptions(
        job_name=job_name,
        partition=partition,
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        array_parallelism=array_parallelism,
        chunk=chunk,
        sbatch_args=tuple(sbatch_arg or ()),
    )
    script = write_script(path, len(rows), opts)
    if not submit:
        print(script)
        print(f"wrote {script}; submit it with: sbatch {script}", file=sys.stderr)
        return
    job_id = sbatch_submit(script)
    print(job_id)
    print(f"submitted {script} as job {job_id}; logs in {script.parent / 'slurm'}", file=sys.stderr)


@batch_app.command("status")
@_user_errors
def status_cmd(
    batch_dir: Annotated[Path, typer.Argument(help="the batch folder (or its manifest.csv)")],
) -> None:
    """Collect every run into BATCH_DIR/summary.csv and show counts and the best runs.

    Exit 0: all completed; 1: some failed or were interrupted; 3: some are pending or running.
    """
    from kandisc.batch.manifest import manifest_path, read_manifest
    from kandisc.batch.status import collect, exit_code, render, write_summary

    path = manifest_path(batch_dir)
    records = collect(read_manifest(path))
    summary = write_summary(path.parent, records)
    render(records, _stdout())
    print(f"summary: {summary}", file=sys.stderr)
    raise typer.Exit(exit_code(records))
