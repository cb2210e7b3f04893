"""Physics tasks: losses on the derivatives of a learnt scalar instead of regression on values.

``lagrangian`` (L(q, q̇) whose Euler–Lagrange equations give the measured q̈) and ``conserved``
(H(x) with ∇H·ẋ = 0). The trainer takes ``task.residual`` as its loss; the symbolic stage scores
formulas with :class:`kandisc.tasks.scoring.TaskScorer`. ``task_from_dict`` rebuilds a task from
the config's form or a model file's extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kandisc.tasks.base import PhysicsTask, TaskError

if TYPE_CHECKING:
    from kandisc.tasks.conserved import ConservedTask
    from kandisc.tasks.lagrangian import LagrangianTask

__all__ = ["ConservedTask", "LagrangianTask", "PhysicsTask", "TaskError", "task_from_dict"]


def task_from_dict(spec: dict | None) -> PhysicsTask | None:
    """``{"lagrangian": {...}}`` / ``{"conserved": {...}}`` -> the task; None / {} -> regression (None)."""
    if not spec:
        return None
    ((kind, params),) = spec.items()
    if kind == "lagrangian":
        from kandisc.tasks.lagrangian import LagrangianTask  # the tasks use sympy: imported when asked for

        return LagrangianTask(params["q"], params["qdot"], params["qddot"], params.get("kinetic"))
    if kind == "conserved":
        from kandisc.tasks.conserved import ConservedTask

        return ConservedTask(params["x"], params["xdot"])
    raise TaskError(f"unknown task {kind!r}; allowed: lagrangian, conserved (or regression)")


def __getattr__(name: str):
    if name == "ConservedTask":
        from kandisc.tasks.conserved import ConservedTask

        return ConservedTask
    if name == "LagrangianTask":
        from kandisc.tasks.lagrangian import LagrangianTask

        return LagrangianTask
    raise AttributeError(f"module 'kandisc.tasks' has no attribute {name!r}")
