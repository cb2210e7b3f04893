"""Progress reporting for the CLI: a rich bar on a terminal, plain log lines elsewhere (Slurm logs).

Both implement :class:`kandisc.pipeline.state.ProgressSink`; the console and clock are injected so
the output can be tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3e}"


def candidate_line(report) -> str:
    """One line per finished search candidate: name, width, status, time, best formula per target."""
    d = report.details
    head = f"candidate {d['name']} {d['width']} seed {d['seed']}: {d['status']} in {d['seconds']:.1f} s"
    if d["status"] != "completed":
        return head + (f" ({d['message']})" if d.get("message") else "")
    parts = []
    for target, best in d["best"].items():
        r2 = best.get("test_r2")
        parts.append(f"{target} = {best.get('formula') or '-'} (R² {'-' if r2 is None else format(r2, '.6f')})")
    return head + "; " + "; ".join(parts)


class PlainSink:
    """One line every ``every`` steps and at each stage end, on the given (stderr) console."""

    def __init__(self, console: Console, every: int = 10, clock: Callable[[], float] = time.monotonic):
        self.console, self.every, self.clock = console, every, clock
        self.t0 = clock()
        self.total = 0

    def stage_started(self, label: str, total_steps: int) -> None:
        self.total = total_steps
        self.console.print(
            f"[{self.clock() - self.t0:7.1f}s] stage {label}" + (f" ({total_steps} steps)" if total_steps else ""),
            highlight=False,
        )

    def step(self, label, record, global_step: int, n_edges: int) -> None:
        n = record.step + 1
        if n % self.every == 0 or n == self.total:
            self.console.print(
                f"[{self.clock() - self.t0:7.1f}s] {label} step {n}/{self.total} "
                f"train {_fmt(record.train_loss)} test {_fmt(record.test_loss)} edges {n_edges}",
                highlight=False,
            )

    def stage_finished(self, label: str, report) -> None:
        if report.stage == "candidate":
            self.console.print(f"[{self.clock() - self.t0:7.1f}s] {candidate_line(report)}", highlight=False)
            return
        if report.message:
            self.console.print(f"warning: {label}: {report.message}", highlight=False)
        details = report.details
        if report.stage == "prune":
            self.console.print(
                f"[{self.clock() - self.t0:7.1f}s] prune: {details['shape_before']} -> {details['shape_after']}, "
                f"removed inputs: {', '.join(details['pruned_inputs']) or 'none'}",
                highlight=False,
            )


class RichSink:
    """A live progress bar (stage, step, losses, elapsed time) for interactive terminals."""

    def __init__(self, console: Console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("train {task.fields[train]} test {task.fields[test]} edges {task.fields[edges]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def stage_started(self, label: str, total_steps: int) -> None:
        if self.task is not None:
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(label, total=max(total_steps, 1), train="-", test="-", edges="-")
        if not total_steps:
            self.progress.update(self.task, completed=1)

    def step(self, label, record, global_step: int, n_edges: int) -> None:
        self.progress.update(
            self.task, advance=1, train=_fmt(record.train_loss), test=_fmt(record.test_loss), edges=n_edges
        )

    def stage_finished(self, label: str, report) -> None:
        if report.stage == "candidate":
            self.console.print(candidate_line(report), highlight=False)
            return
        if report.message:
            self.console.print(f"warning: {label}: {report.message}")
        if report.stage == "prune":
            d = report.details
            self.console.print(
                f"prune: {d['shape_before']} -> {d['shape_after']}, removed inputs: "
                f"{', '.join(d['pruned_inputs']) or 'none'}"
            )
