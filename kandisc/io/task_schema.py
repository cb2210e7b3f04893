"""The ``task:`` section of the config: regression (the default) or a physics task.

``task: regression`` fits the targets' values. ``task: {lagrangian: {q, qdot, qddot, kinetic}}``
learns L(q, q̇) from measured accelerations, ``task: {conserved: {x, xdot}}`` a conserved H(x) from
measured velocities (:mod:`kandisc.tasks` owns their losses). The task names the model's inputs
and the derivative columns itself, so this module checks the column lists (same lengths, each
column once) and ``check_with_config`` the sections a physics task cannot combine with.
``TASK_PIPELINE`` is what a physics task runs when the config names no pipeline: the discovery
search is for regression.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator, model_serializer, model_validator

from kandisc.io.schema_types import _f, _Model, _show

# Sparsify and prune once, fit the survivors, then snap; the symbolic stage scores formulas on the task.
TASK_PIPELINE: list[Any] = [
    {"fit": {"steps": 100, "lamb": 0.001}},
    {"prune": {}},
    {"fit": {"steps": 100}},
    {"symbolic": {"retrain_steps": 30}},
]


def _columns(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and not value:
        raise ValueError("empty list (got []; allowed: one or more column names)")
    return value


def _listed_twice(lists: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    for key, names in lists.items():
        for name in names:
            if name in seen:
                where = key if seen[name] == key else f"{seen[name]} and {key}"
                raise ValueError(f"column {name!r} is listed twice ({where}); each column plays one part")
            seen[name] = key


class LagrangianSpec(_Model):
    """Learn a Lagrangian L(q, q̇) whose Euler–Lagrange equations give the measured q̈."""

    q: list[str] = _f(..., "coordinate columns q1, ...", examples=[["q"]])
    qdot: list[str] = _f(..., "velocity columns, one per coordinate, in the same order", examples=[["qdot"]])
    qddot: list[str] = _f(..., "acceleration columns, one per coordinate (what the loss compares)")
    kinetic: str | None = _f(
        None, "a known part of L (e.g. qdot**2/2), added to the network so it learns the rest; null = none"
    )

    @field_validator("q", "qdot", "qddot", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _columns(value)

    @model_validator(mode="after")
    def _shape(self) -> LagrangianSpec:
        lengths = {len(self.q), len(self.qdot), len(self.qddot)}
        if len(lengths) > 1:
            raise ValueError(
                f"q, qdot and qddot must list the same number of columns (got {len(self.q)}, {len(self.qdot)}, "
                f"{len(self.qddot)}); give one velocity and one acceleration column per coordinate"
            )
        _listed_twice({"q": self.q, "qdot": self.qdot, "qddot": self.qddot})
        if self.kinetic is not None:
            from kandisc.errors import KandiscError
            from kandisc.knowledge.formula import parse_formula

            try:
                parse_formula(self.kinetic, self.q + self.qdot)
            except KandiscError as err:
                raise ValueError(f"kinetic: {err}") from None
        return self


class ConservedSpec(_Model):
    """Learn a quantity H(x) conserved along the measured flow: ∇H·ẋ = 0."""

    x: list[str] = _f(..., "state columns", examples=[["q", "p"]])
    xdot: list[str] = _f(..., "their time derivatives, in the same order", examples=[["qdot", "pdot"]])

    @field_validator("x", "xdot", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _columns(value)

    @model_validator(mode="after")
    def _shape(self) -> ConservedSpec:
        if len(self.x) != len(self.xdot):
            raise ValueError(
                f"x and xdot must list the same number of columns (got {len(self.x)} and {len(self.xdot)}); "
                "give one derivative column per state column"
            )
        # A column may be both: the velocity is a state column and the derivative of the position.
        _listed_twice({"x": self.x})
        _listed_twice({"xdot": self.xdot})
        return self


def _task_shorthand(value: Any) -> Any:
    """``task: regression`` (or null) is the default; physics tasks are one-key mappings."""
    if value is None or (isinstance(value, str) and value.lower() == "regression"):
        return {}
    if isinstance(value, str) and value.lower() in ("lagrangian", "conserved"):
        raise ValueError(
            f"task {value!r} needs its columns, e.g. task: {{lagrangian: {{q: [q], qdot: [qdot], qddot: [qddot]}}}}"
        )
    if isinstance(value, dict) and len(value) > 1:
        raise ValueError(f"give one task, not {len(value)} ({', '.join(map(str, value))})")
    if not isinstance(value, dict):
        raise ValueError(f"expected regression, {{lagrangian: {{...}}}} or {{conserved: {{...}}}} (got {_show(value)})")
    return value


class TaskConfig(_Model):
    """What the network learns: the targets (regression) or a physics scalar (lagrangian, conserved)."""

    lagrangian: LagrangianSpec | None = _f(None, "learn L(q, q̇) from q̈ (see LagrangianSpec)")
    conserved: ConservedSpec | None = _f(None, "learn H(x) with ∇H·ẋ = 0 (see ConservedSpec)")

    @model_serializer(mode="wrap")
    def _short(self, handler: Any) -> Any:
        dumped = {k: v for k, v in handler(self).items() if v is not None}
        return dumped or "regression"

    @property
    def kind(self) -> str:
        return "lagrangian" if self.lagrangian else "conserved" if self.conserved else "regression"

    @property
    def physics(self) -> bool:
        return self.kind != "regression"

    def as_dict(self) -> dict:
        """The physics task in the form :func:`kandisc.tasks.task_from_dict` reads ({} = regression)."""
        dumped = self.model_dump()
        return {} if dumped == "regression" else dumped

    def columns(self) -> tuple[list[str], list[str]]:
        """(model inputs, derivative columns) of a physics task."""
        if self.lagrangian:
            t = self.lagrangian
            return t.q + t.qdot, list(t.qddot)
        return list(self.conserved.x), list(self.conserved.xdot)


def check_with_config(cfg: Any) -> None:
    """A physics task names the columns and trains on raw derivatives: the sections that clash."""
    task = cfg.task
    if not task.physics:
        return
    if cfg.data.inputs is not None or cfg.data.targets is not None:
        raise ValueError(f"task.{task.kind} names the columns it reads; remove data.inputs and data.targets")
    clashes = [
        ("data.standardize", cfg.data.standardize, "derivatives are taken in the data's own units"),
        ("prior", cfg.prior.formula is not None or cfg.prior.model_file is not None, "use task.lagrangian.kinetic"),
        ("auxiliary", bool(cfg.auxiliary), "the derivatives are taken with respect to the task's columns"),
    ]
    for key, present, why in clashes:
        if present:
            raise ValueError(f"{key} cannot be combined with task.{task.kind} ({why}); remove {key}")
