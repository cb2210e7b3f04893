"""No value given to `kandisc batch slurm` can add a command to submit.sbatch (fuzz finding, issue 18).

Crafted values with newlines are refused before anything is written (exit 2, one stderr line);
values with shell metacharacters that Slurm does accept stay inert: the script parses (`bash -n`),
holds exactly the template's command lines, and running it executes nothing the value spelled.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kandisc.batch.manifest import Row, write_manifest
from kandisc.batch.slurm import SlurmOptions, render_script
from kandisc.cli import app

runner = CliRunner()


def _batch(tmp_path: Path) -> Path:
    batch = tmp_path / "b"
    rows = [Row(i, tmp_path / "d.csv", None, (), i, batch / "runs" / str(i)) for i in range(2)]
    write_manifest(batch / "manifest.csv", rows)
    return batch


def _commands(text: str) -> list[str]:
    """The lines bash would execute (not blank, not comments)."""
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _fixed(commands: list[str]) -> list[str]:
    """Commands without the environment-dependent assignments (paths of this checkout)."""
    return [c for c in commands if not c.startswith(("MANIFEST=", "PYTHON=", "export PYTHONPATH"))]


TEMPLATE_COMMANDS = _commands(render_script(Path("/b/manifest.csv"), 2, SlurmOptions(), "/py"))


@pytest.mark.parametrize(
    "args",
    [
        ["--partition", "cpu\ntouch {marker}"],
        ["--job-name", "x\ntouch {marker}"],
        ["--sbatch-arg", "--account=p\ntouch {marker}"],
        ["--sbatch-arg", "--comment=a\rtouch {marker}"],
        ["--sbatch-arg", "--comment\ntouch {marker}"],
        ["--partition", "cpu; touch {marker}"],
        ["--partition", "$(touch {marker})"],
        ["--job-name", "a b"],
        ["--mem-gb", "nan"],
        ["--mem-gb", "inf"],
    ],
    ids=[
        "partition_newline",
        "jobname_newline",
        "sbatch_arg_newline",
        "sbatch_arg_cr",
        "sbatch_arg_name_newline",
        "partition_semicolon",
        "partition_subshell",
        "jobname_space",
        "mem_nan",
        "mem_inf",
    ],
)
def test_crafted_values_are_refused_before_anything_is_written(tmp_path: Path, args: list[str]) -> None:
    batch = _batch(tmp_path)
    marker = tmp_path / "pwned"
    args = [a.format(marker=marker) for a in args]
    res = runner.invoke(app, ["batch", "slurm", str(batch), *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --"), res.stderr
    assert not (batch / "submit.sbatch").exists() and not (batch / "slurm").exists()
    assert not marker.exists()


@pytest.mark.parametrize(
    "value", ["--comment=$(touch {marker})", "--comment=`touch {marker}`; touch {marker}", '--comment=a "b" \\c']
)
def test_accepted_values_with_metacharacters_stay_inert(tmp_path: Path, value: str) -> None:
    batch = _batch(tmp_path)
    marker = tmp_path / "pwned"
    res = runner.invoke(app, ["batch", "slurm", str(batch), "--sbatch-arg", value.format(marker=marker)])
    assert res.exit_code == 0, res.output
    script = batch / "submit.sbatch"
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert _fixed(_commands(text)) == _fixed(TEMPLATE_COMMANDS)
    (comment,) = [line for line in text.splitlines() if line.startswith("#SBATCH --comment")]
    assert comment.startswith('#SBATCH --comment="') and comment.endswith('"')  # sbatch reads double quotes
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert "SLURM_ARRAY_TASK_ID" in proc.stderr  # ran up to the task check, executing only the template
    assert not marker.exists()


def test_manifest_folder_with_a_newline_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "b\ntouch x"
    with pytest.raises(Exception, match="control characters"):
        render_script(folder / "manifest.csv", 1, SlurmOptions(), "/py")


def test_submit_without_sbatch_writes_nothing(tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    res = runner.invoke(app, ["batch", "slurm", str(batch), "--submit"], env={"PATH": str(tmp_path)})
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "sbatch not found on PATH" in res.stderr
    assert not (batch / "submit.sbatch").exists() and not (batch / "slurm").exists()


def _sbatch_split(line: str) -> list[str]:
    """The arguments sbatch reads from one ``#SBATCH`` line (a port of _get_argument in Slurm's
    src/sbatch/opt.c: blanks split, ' and " quote, backslash escapes even inside quotes, and an
    unquoted # ends the line)."""
    args, i, n = [], 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        arg, quote, escaped = [], "", False
        while i < n and (quote or not line[i].isspace()):
            c = line[i]
            if escaped:
                escaped = False
            elif c == "\\":
                escaped, i = True, i + 1
                continue
            elif quote:
                if c == quote:
                    quote, i = "", i + 1
                    continue
            elif c in "\"'":
                quote, i = c, i + 1
                continue
            elif c == "#":
                i = n
                break
            arg.append(c)
            i += 1
        assert not quote, f"sbatch: unmatched quote in {line!r}"
        if not arg:
            return args
        args.append("".join(arg))


@pytest.mark.parametrize(
    "value", ["plain", 'a "b" \\c', "x # not a comment", "it's", "$(touch x); `y`", "tab\\tnot", "trailing\\"]
)
def test_sbatch_reads_back_exactly_the_value_given(value: str) -> None:
    opts = SlurmOptions(sbatch_args=(f"--comment={value}",))
    text = render_script(Path("/b/manifest.csv"), 1, opts, "/py")
    (line,) = [x for x in text.splitlines() if x.startswith("#SBATCH --comment")]
    assert _sbatch_split(line.removeprefix("#SBATCH")) == [f"--comment={value}"]
    headers = [_sbatch_split(x.removeprefix("#SBATCH")) for x in text.splitlines() if x.startswith("#SBATCH")]
    assert all(len(args) == 1 for args in headers)  # one option per line, nothing smuggled in
