"""The run directory: where one `kandisc fit` writes config, status, metrics, model and results.

Owns the layout other tools read (``RUN_FILES``, ``RUN_DIRS``), the default directory name, the
refusal to touch an existing run without ``--overwrite``, and the run.json status life cycle
(running -> completed | failed | interrupted). Nothing is created on disk until the run writes
its first file, so a run that fails validation leaves no trace.

``--overwrite`` never costs the previous run: the new one is written beside it (in
``.<name>.kandisc-new/<name>/``, same parent, so renames stay on one file system) and its files
replace the old run's only once it completed; a new run that fails or is interrupted is dropped
and the previous one stays as it was (files of other tools in the folder are never touched). A
run that fails or is interrupted in place keeps what helps to understand or resume it (config,
run.json, metrics, the last model, checkpoints) and loses the results that would look complete
(summary, formulas, report, figures). :meth:`RunDir.resume` reopens an interrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kandisc.errors import RunDirError
from kandisc.io.atomic import atomic_write_text, write_error

STATUSES = ("running", "completed", "failed", "interrupted")
METRICS_COLUMNS = ("step", "stage", "train_loss", "test_loss", "reg", "n_edges")
# Every file a run writes (tests/test_report.py holds a run to this list); only these, and
# RUN_DIRS, are removed when a run is overwritten.
RUN_FILES = (
    "config.yaml",
    "run.json",
    "metrics.csv",
    "model.pt",
    "summary.json",
    "attribution.json",
    "formulas.csv",
    "report.md",
    "report.html",
)
RUN_DIRS = ("figures", "formulas", "checkpoints")
# What a failed or interrupted run keeps: enough to see what happened and to resume; not results.
KEPT_WHEN_UNFINISHED = ("config.yaml", "run.json", "metrics.csv", "model.pt", "checkpoints")


def _utc_iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_run_dir(
    data_path: Path | str,
    config_yaml: str,
    data_sha256: str,
    root: Path | str = Path("runs"),
    now: datetime | None = None,
) -> Path:
    """``<root>/<UTC yyyymmdd-HHMMSS>_<data stem>_<6 hex of sha256(config + data sha)>``.

    A name already taken (same config and data within the same second) gets a ``-2``, ``-3`` suffix:
    a directory kandisc picked itself must never make a run fail.
    """
    now = now or datetime.now(UTC)
    digest = hashlib.sha256((config_yaml + data_sha256).encode()).hexdigest()[:6]
    base = Path(root) / f"{now.astimezone(UTC):%Y%m%d-%H%M%S}_{Path(data_path).stem}_{digest}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: NaN/inf -> null, numpy scalars/arrays -> numbers/lists, paths -> strings."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, without importing numpy here
        return to_jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (NaN/inf as null, so any JSON reader accepts it)."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_run_json(path: Path | str) -> dict[str, Any] | None:
    """The run.json of a run directory, or None when there is none or it cannot be read."""
    try:
        return json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float; nan/inf stay readable
    return str(value)


def _rows_up_to(path: Path, last_step: int) -> list[list[str]]:
    """The rows of an existing metrics.csv up to ``last_step``, as written (the text keeps every bit)."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [row for row in rows if row and row[0].isdigit() and int(row[0]) <= last_step]


class MetricsWriter:
    """Appends ``step,stage,train_loss,test_loss,reg,n_edges`` rows to metrics.csv, flushed per row."""

    def __init__(self, path: Path, keep_steps: int | None = None) -> None:
        """A new metrics.csv; ``keep_steps``: a resumed run's, keeping the rows up to that step."""
        self.path = path
        try:
            kept = _rows_up_to(path, keep_steps) if keep_steps is not None else []
            self._handle: TextIO | None = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._csv = csv.writer(self._handle)
            self._csv.writerow(METRICS_COLUMNS)
            self._csv.writerows(kept)
            self._handle.flush()
        except OSError as exc:
            raise write_error(path, exc) from None

    def write(
        self,
        step: int,
        stage: str,
        train_loss: float | None,
        test_loss: float | None = None,
        reg: float | None = None,
        n_edges: int | None = None,
    ) -> None:
        if self._handle is None:
            raise RunDirError(f"{self.path}: metrics writer is closed; open a new one with metrics_writer()")
        values = (step, stage, train_loss, test_loss, reg, n_edges)
        try:
            self._csv.writerow([_cell(v.item() if hasattr(v, "item") else v) for v in values])
            self._handle.flush()  # readers (tail -f, a dashboard) see every row as soon as it exists
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            with contextlib.suppress(OSError):  # a full disk was reported by the write that hit it
                handle.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunDir:
    """One run's directory; use :meth:`create`, then ``write_config``, ``start``, ..., ``finish``."""

    def __init__(
        self,
        path: Path,
        replace_old: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = Path(path)  # where the run ends up
        self._replace_old = replace_old
        # Where it is written: beside an old run being replaced, under the same final name.
        self.path = (
            self.target.parent / f".{self.target.name}.kandisc-new" / self.target.name if replace_old else self.target
        )
        self._clock, self._timer = clock, timer
        self._ready = False
        self._info: dict[str, Any] = {}
        self._t0: float | None = None

    @classmethod
    def create(cls, path: Path | str, overwrite: bool = False, **clocks: Any) -> RunDir:
        """Check that ``path`` may hold a new run; writes nothing yet (see the module docstring)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"run directory {path} exists and is a file; choose another --out")
        entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        if entries and not overwrite:
            raise RunDirError(f"run directory {path} exists; pass --overwrite or choose --out")
        foreign = [e for e in entries if e not in RUN_FILES + RUN_DIRS and not e.startswith(".")]
        if entries and "run.json" not in entries and foreign:
            # --overwrite on a directory that was never a run (say `--out .`) must not delete anything.
            raise RunDirError(
                f"{path} is not a kandisc run directory (no run.json; holds {foreign[0]!r});"
                " refusing to overwrite it, choose another --out"
            )
        return cls(path, replace_old=bool(entries), **clocks)

    @classmethod
    def resume(cls, path: Path | str, **clocks: Any) -> RunDir:
        """Reopen an unfinished run in place to continue it (``kandisc fit --resume``)."""
        path = Path(path)
        info = read_run_json(path)
        if not isinstance(info, dict) or info.get("status") not in STATUSES:
            raise RunDirError(f"{path} is not a kandisc run directory (no readable run.json); give a run to --resume")
        if info["status"] == "completed":
            raise RunDirError(f"run {path} already completed; nothing to resume (start a new run with --out)")
        run = cls(path, **clocks)
        run._ready, run._info = True, info
        return run

    def _prepare(self) -> None:
        """Create the directory and clear an overwritten run's files, once, before the first write."""
        if self._ready:
            return
        try:
            if self._replace_old:  # a holder left by a killed earlier attempt is ours to clear
                shutil.rmtree(self.path.parent, ignore_errors=True)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(
                f"cannot prepare run directory {self.path} ({exc.strerror}); choose another --out"
            ) from None
        self._ready = True

    # ------------------------------------------------------------ paths

    @property
    def model_path(self) -> Path:
        return self.path / "model.pt"

    @property
    def figures_dir(self) -> Path:
        return self._subdir("figures")

    @property
    def formulas_dir(self) -> Path:
        return self._subdir("formulas")

    @property
    def formulas_csv(self) -> Path:
        return self.path / "formulas.csv"

    def checkpoint_path(self, index: int, stage: str) -> Path:
        """``checkpoints/NN_stage.pt`` for the ``index``-th stage (1-based, as a user counts stages)."""
        return self._subdir("checkpoints") / f"{index:02d}_{stage}.pt"

    def _subdir(self, name: str) -> Path:
        self._prepare()
        try:
            (self.path / name).mkdir(exist_ok=True)
        except OSError as exc:
            raise write_error(self.path / name, exc) from None
        return self.path / name

    # ------------------------------------------------------------ writing

    def write_text(self, name: str, text: str) -> Path:
        self._prepare()
        atomic_write_text(self.path / name, text)
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        self._prepare()
        write_json(self.path / name, obj)
        return self.path / name

    def write_config(self, yaml_text: str) -> Path:
        return self.write_text("config.yaml", yaml_text)

    def metrics_writer(self, keep_steps: int | None = None) -> MetricsWriter:
        """metrics.csv from scratch or, for a resumed run, keeping its rows up to ``keep_steps``."""
        self._prepare()
        return MetricsWriter(self.path / "metrics.csv", keep_steps)

    def start(
        self,
        argv: Sequence[str],
        seed: int,
        data_path: Path | str,
        data_sha256: str,
        versions: Mapping[str, str],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write run.json with status ``running``; ``extra`` adds keys (device, overrides, ...)."""
        self._t0 = self._timer()
        resumed = {}
        if self._info:  # a resumed run: run.json keeps when it first started and how often it resumed
            first = self._info.get("first_start_time") or self._info.get("start_time")
            resumed = {"first_start_time": first, "resumes": int(self._info.get("resumes") or 0) + 1}
        self._info = {
            "run_id": self.path.name,
            "status": "running",
            "argv": list(argv),
            "seed": seed,
            "data": {"path": str(data_path), "sha256": data_sha256},
            "versions": dict(versions),
            "start_time": _utc_iso(self._clock()),
            "end_time": None,
            "wall_seconds": None,
            "error": None,
            **resumed,
            **(extra or {}),
        }
        self.write_json("run.json", self._info)

    def finish(self, status: str, error: str | None = None) -> None:
        """Record the end of the run: status completed, failed or interrupted, and the error if any."""
        if status not in STATUSES[1:]:
            raise ValueError(f"finish status must be one of {', '.join(STATUSES[1:])}, not {status!r}")
        wall = None if self._t0 is None else round(self._timer() - self._t0, 3)
        end = {"status": status, "end_time": _utc_iso(self._clock()), "wall_seconds": wall, "error": error}
        self._info.setdefault("run_id", self.path.name)
        self._info.update(end)
        self.write_json("run.json", self._info)
        if not self._replace_old:
            if status != "completed":
                self._drop_results()
        elif status == "completed":
            self._swap_in()
        else:
            shutil.rmtree(self.path.parent, ignore_errors=True)  # the previous run stays as it was
            self.path, self._replace_old = self.target, False

    def _drop_results(self) -> None:
        """An unfinished run in place: remove what would look like results (see the module docstring)."""
        for name in RUN_FILES + RUN_DIRS:
            entry = self.path / name
            if name in KEPT_WHEN_UNFINISHED or not (entry.exists() or entry.is_symlink()):
                continue
            with contextlib.suppress(OSError):  # best effort: run.json already says the run is unfinished
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def _swap_in(self) -> None:
        """The completed new run replaces the old one's files, entry by entry (renames, no copies)."""
        holder, aside = self.path.parent, self.path.parent / ".previous"
        try:
            aside.mkdir()
            for name in RUN_FILES + RUN_DIRS:
                if (self.target / name).exists() or (self.target / name).is_symlink():
                    os.replace(self.target / name, aside / name)
            for entry in sorted(self.path.iterdir()):
                os.replace(entry, self.target / entry.name)
        except OSError as exc:
            raise RunDirError(
                f"cannot move the new run from {self.path} into {self.target} ({exc.strerror}); "
                f"the previous run's files are in {aside}"
            ) from None
        shutil.rmtree(holder, ignore_errors=True)
        self.path, self._replace_old = self.target, False

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (0 before it)."""
        return 0.0 if self._t0 is None else self._timer() - self._t0

    @property
    def info(self) -> dict[str, Any]:
        """What run.json currently holds (a copy)."""
        return dict(self._info)
