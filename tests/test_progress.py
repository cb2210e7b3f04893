"""Progress output: plain log lines every N steps (cluster logs) and the rich bar, with an
injected console and clock."""

import io
import math

from rich.console import Console

from kandisc.pipeline.state import StageReport
from kandisc.progress import PlainSink, RichSink
from kandisc.train import StepRecord


class Clock:
    """Starts at 100 s and advances 0.5 s per reading."""

    def __init__(self):
        self.now = 99.5

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False, color_system=None), buffer


def run_stage(sink, steps: int, label: str = "fit 1") -> None:
    sink.stage_started(label, steps)
    for step in range(steps):
        test = math.nan if step == 0 else 0.2 / (step + 1)
        sink.step(label, StepRecord(step, 0.1 / (step + 1), test, 0.0), step + 1, 7)


def test_plain_lines_every_n_steps_and_at_the_end():
    out, buffer = console()
    sink = PlainSink(out, every=5, clock=Clock())
    run_stage(sink, 12)
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "[    0.5s] stage fit 1 (12 steps)",
        "[    1.0s] fit 1 step 5/12 train 2.000e-02 test 4.000e-02 edges 7",
        "[    1.5s] fit 1 step 10/12 train 1.000e-02 test 2.000e-02 edges 7",
        "[    2.0s] fit 1 step 12/12 train 8.333e-03 test 1.667e-02 edges 7",
    ]


def test_plain_missing_losses_stages_without_steps_and_warnings():
    out, buffer = console()
    sink = PlainSink(out, every=1, clock=Clock())
    run_stage(sink, 1)
    sink.stage_started("prune", 0)
    details = {"shape_before": [2, 5, 1], "shape_after": [2, 2, 1], "pruned_inputs": []}
    sink.stage_finished("prune", StageReport("prune", "prune", details=details))
    sink.stage_finished("fit 2", StageReport("fit", "fit 2", "nonfinite", {}, "loss became non-finite"))
    lines = buffer.getvalue().splitlines()
    assert lines[1] == "[    1.0s] fit 1 step 1/1 train 1.000e-01 test - edges 7"  # NaN test loss
    assert lines[2] == "[    1.5s] stage prune"
    assert lines[3] == "[    2.0s] prune: [2, 5, 1] -> [2, 2, 1], removed inputs: none"
    assert lines[4] == "warning: fit 2: loss became non-finite"


def test_rich_bar_counts_steps_and_prints_stage_results():
    out, buffer = console()
    with RichSink(out) as sink:
        run_stage(sink, 4)
        task = sink.progress.tasks[0]
        assert (task.description, task.total, task.completed) == ("fit 1", 4, 4)
        assert task.fields["train"] == "2.500e-02" and task.fields["edges"] == 7
        sink.stage_started("refine G=10", 0)
        assert sink.progress.tasks[1].completed == 1  # a stage without steps shows as done
        details = {"shape_before": [3, 1], "shape_after": [2, 1], "pruned_inputs": ["x2"]}
        sink.stage_finished("prune", StageReport("prune", "prune", details=details))
    assert "prune: [3, 1] -> [2, 1], removed inputs: x2" in buffer.getvalue()


def _candidate(status: str, best: dict, message: str = "") -> StageReport:
    details = {"name": "product", "width": [2, [0, 1], 1], "seed": 0, "status": status, "seconds": 3.25}
    return StageReport("candidate", "product", status, {**details, "best": best, "message": message})


def test_search_candidates_get_one_line_each():
    out, buffer = console()
    sink = PlainSink(out, every=5, clock=Clock())
    sink.stage_finished("product", _candidate("completed", {"f": {"formula": "a*b", "test_r2": 1.0}}))
    sink.stage_finished("product", _candidate("timeout", {}, "not started: time budget spent"))
    sink.stage_finished("product", _candidate("completed", {"f": {"formula": None, "test_r2": None}}))
    assert buffer.getvalue().splitlines() == [
        "[    0.5s] candidate product [2, [0, 1], 1] seed 0: completed in 3.2 s; f = a*b (R² 1.000000)",
        "[    1.0s] candidate product [2, [0, 1], 1] seed 0: timeout in 3.2 s (not started: time budget spent)",
        "[    1.5s] candidate product [2, [0, 1], 1] seed 0: completed in 3.2 s; f = - (R² -)",
    ]
    rich_out, rich_buffer = console()
    RichSink(rich_out).stage_finished("product", _candidate("failed", {}, "RuntimeError: boom"))
    assert (
        rich_buffer.getvalue().strip()
        == "candidate product [2, [0, 1], 1] seed 0: failed in 3.2 s (RuntimeError: boom)"
    )
