"""The Slurm executor: ``BATCH_DIR/submit.sbatch``, one array job over the manifest, and its submission.

Array task ``t`` runs manifest rows ``t*chunk .. t*chunk+chunk-1`` one after the other in one
process, ``<python> -m kandisc batch run-one MANIFEST --index FIRST --count N``, so torch and
kandisc are imported once per chunk; if that process crashes (a signal other than an interrupt), the
rest of the chunk runs one process per row, so one crash does not take the rest of the chunk with
it. The script names the absolute interpreter of the current environment, so compute nodes use the
same install; a source checkout that is not installed is put on ``PYTHONPATH``. ``sbatch`` is only
called on request (``--submit``): the script is always written first and can be read, edited and
submitted by hand.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import site
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import kandisc
from kandisc.batch.local import THREAD_VARS
from kandisc.batch.manifest import atomic_write_text
from kandisc.errors import ConfigError, KandiscError

SCRIPT_NAME = "submit.sbatch"
_MAX_INT = 10**6
_MAX_MEM_GB = 10**6
_PARTITION = re.compile(r"[A-Za-z0-9_.-]{1,128}(,[A-Za-z0-9_.-]{1,128})*")
_JOB_NAME = re.compile(r"[A-Za-z0-9_.+=@:-]{1,128}")
_SBATCH_ARG = re.compile(r"--(?P<name>[a-z][a-z0-9-]*)(=(?P<value>.*))?", re.DOTALL)
_PLAIN = re.compile(r"[\w@%+=:,./-]*", re.ASCII)  # shlex.quote's safe set: nothing to quote
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SubmitError(KandiscError):
    """sbatch is missing or refused the job."""


@dataclass(frozen=True)
class SlurmOptions:
    """What goes into the ``#SBATCH`` header; defaults suit small CPU fits."""

    job_name: str | None = None
    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    array_parallelism: int | None = None
    chunk: int = 1
    sbatch_args: tuple[str, ...] = ()

    def check(self) -> None:
        """Refuse anything that is not a plain value of its Slurm option (ConfigError, one line).

        Values end up in a shell script, so a newline in, say, ``--partition`` would become a command;
        besides being quoted, every value must look like what Slurm accepts for that option.
        """
        for name in ("time_min", "cpus_per_task", "chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
            if getattr(self, name) > _MAX_INT:
                raise ConfigError(f"--{name.replace('_', '-')} must be at most {_MAX_INT}")
        if not (math.isfinite(self.mem_gb) and 0 < self.mem_gb <= _MAX_MEM_GB):
            raise ConfigError(f"--mem-gb must be a positive number up to {_MAX_MEM_GB} (got {self.mem_gb})")
        if self.array_parallelism is not None and not 1 <= self.array_parallelism <= _MAX_INT:
            raise ConfigError(f"--array-parallelism must be between 1 and {_MAX_INT}")
        if self.partition is not None and not _PARTITION.fullmatch(self.partition):
            raise ConfigError(
                f"--partition {_shown(self.partition)}: not a Slurm partition name; use letters, digits, "
                "'_', '.', '-' (several: comma-separated, e.g. cpu,short)"
            )
        if self.job_name is not None and not _JOB_NAME.fullmatch(self.job_name):
            raise ConfigError(
                f"--job-name {_shown(self.job_name)}: use 1-128 letters, digits or '_ . + - = @ :' (no spaces)"
            )
        for arg in self.sbatch_args:
            option = _SBATCH_ARG.fullmatch(arg)
            if option is None:
                raise ConfigError(f"--sbatch-arg {_shown(arg)}: give a long option such as --account=myproject")
            if _CONTROL.search(option["value"] or ""):
                raise ConfigError(
                    f"--sbatch-arg {_shown(arg)}: the value holds a control character (newline, tab, ...); remove it"
                )


def _shown(value: str) -> str:
    """A value as it can be shown on one line (repr escapes newlines), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _sbatch_line(option: str) -> str:
    """``#SBATCH --name=value``, the value quoted the way sbatch reads it.

    Bash sees the whole line as a comment; sbatch splits it on blanks, honours quotes, takes a
    backslash as an escape even inside quotes and an unquoted ``#`` as the end of the line. So a
    value is double-quoted with ``\\`` and ``"`` escaped (``shlex.quote`` would lose backslashes).
    Plain values stay as they are; control characters never get this far (``SlurmOptions.check``).
    """
    name, sep, value = option.partition("=")
    if not sep or _PLAIN.fullmatch(value):
        return f"#SBATCH {option}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'#SBATCH {name}="{escaped}"'


def _source_root() -> str | None:
    """The folder to put on PYTHONPATH when kandisc runs from a checkout rather than an install."""
    root = Path(kandisc.__file__).resolve().parent.parent
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if root in installed else str(root)


def _time(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def render_script(manifest: Path, n_rows: int, opts: SlurmOptions, python: str, pythonpath: str | None = None) -> str:
    """The sbatch script text (pure: everything environment-dependent is a parameter)."""
    opts.check()
    batch_dir = manifest.parent
    if re.search(r"\s", str(batch_dir)) or _CONTROL.search(str(batch_dir)):
        raise ConfigError(
            f"{_shown(str(batch_dir))}: Slurm log paths cannot contain spaces or control characters; "
            "move the batch folder"
        )
    for name, value in (("interpreter", python), ("PYTHONPATH", pythonpath or "")):
        if _CONTROL.search(value):
            raise ConfigError(f"the {name} path {_shown(value)} holds a control character; install kandisc elsewhere")
    n_tasks = math.ceil(n_rows / opts.chunk)
    array = f"0-{n_tasks - 1}" + (f"%{opts.array_parallelism}" if opts.array_parallelism else "")
    header = [
        f"--job-name={opts.job_name or 'kandisc-' + re.sub(r'[^A-Za-z0-9_.-]+', '-', batch_dir.name)}",
        f"--array={array}",
        *([f"--partition={opts.partition}"] if opts.partition else []),
        f"--time={_time(opts.time_min)}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={opts.cpus_per_task}",
        f"--mem={round(opts.mem_gb * 1024)}M",
        f"--chdir={batch_dir}",
        f"--output={batch_dir}/slurm/%A_%a.out",
        f"--error={batch_dir}/slurm/%A_%a.err",
        *opts.sbatch_args,
    ]
    threads = " ".join(f"{var}={opts.cpus_per_task}" for var in THREAD_VARS)
    lines = ["#!/bin/bash", *(_sbatch_line(h) for h in header)]
    lines += [
        f"# Generated by kandisc {kandisc.__version__} (kandisc batch slurm). Array task t runs manifest",
        "# rows t*CHUNK .. t*CHUNK+CHUNK-1; resubmitting is safe: completed runs are skipped.",
        "set -u",
        "",
        f"MANIFEST={shlex.quote(str(manifest))}",
        f"PYTHON={shlex.quote(python)}",
        f"N_ROWS={n_rows}",
        f"CHUNK={opts.chunk}",
        f"export {threads}",
    ]
    if pythonpath:
        lines.append(f"export PYTHONPATH={shlex.quote(pythonpath)}${{PYTHONPATH:+:$PYTHONPATH}}")
    lines += [
        "",
        'task=${SLURM_ARRAY_TASK_ID:?"submit this script with sbatch (it needs SLURM_ARRAY_TASK_ID)"}',
        "first=$((task * CHUNK))",
        "last=$((first + CHUNK - 1))",
        'if [ "$last" -ge "$N_ROWS" ]; then last=$((N_ROWS - 1)); fi',
        '"$PYTHON" -m kandisc batch run-one "$MANIFEST" --index "$first" --count "$((last - first + 1))"',
        "rc=$?",
        "# 0 done, 1 a fit failed, 2 a row was refused, 129/130/143 interrupted: the chunk is over. Anything",
        "# else is a crash (segfault, out of memory): finish the chunk one process per row (done rows skip).",
        'case "$rc" in',
        "    0 | 1 | 2 | 129 | 130 | 143) ;;",
        "    *)",
        "        rc=0",
        "        for ((i = first; i <= last; i++)); do",
        '            "$PYTHON" -m kandisc batch run-one "$MANIFEST" --index "$i" || rc=1',
        "        done",
        "        ;;",
        "esac",
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


def write_script(manifest: Path, n_rows: int, opts: SlurmOptions, python: str | None = None) -> Path:
    """Write ``submit.sbatch`` next to the manifest and create the ``slurm/`` log folder."""
    opts.check()
    text = render_script(manifest, n_rows, opts, python or sys.executable, _source_root())
    (manifest.parent / "slurm").mkdir(parents=True, exist_ok=True)  # sbatch does not create it
    script = manifest.parent / SCRIPT_NAME
    atomic_write_text(script, text)
    script.chmod(0o755)
    return script


def submit(
    script: Path,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> str:
    """``sbatch --parsable SCRIPT``; returns the job id."""
    sbatch = which("sbatch")
    if sbatch is None:
        raise SubmitError(
            f"sbatch not found on PATH; the script was written to {script}; "
            f"submit it on the cluster with: sbatch {script}"
        )
    proc = run([sbatch, "--parsable", str(script)], capture_output=True, text=True, cwd=script.parent)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        reason = detail[-1] if detail else "no message"
        raise SubmitError(f"sbatch refused {script} (exit {proc.returncode}): {reason}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id:
        raise SubmitError(f"sbatch accepted {script} but printed no job id")
    with (script.parent / "slurm" / "jobs.txt").open("a", encoding="utf-8") as fh:
        fh.write(job_id + "\n")
    return job_id
