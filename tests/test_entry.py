"""The console script's exit: the status, flushed output and exit handlers, without teardown."""

import subprocess
import sys


def run_python(code: str):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_exit_now_keeps_the_status_the_output_and_the_exit_handlers(tmp_path):
    marker = tmp_path / "handler-ran"
    done = run_python(
        "import atexit, sys\n"
        "from kandisc.entry import exit_now\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "print('buffered output', end='')\n"
        "sys.stderr.write('buffered error')\n"
        "exit_now(3)\n"
        "print('never')\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "buffered output", "buffered error")
    assert marker.read_text() == "yes"


def test_a_message_exits_with_status_1_and_none_with_0():
    done = run_python("from kandisc.entry import exit_now\nexit_now('error: what went wrong')")
    assert (done.returncode, done.stderr) == (1, "error: what went wrong\n")
    assert run_python("from kandisc.entry import exit_now\nexit_now(None)").returncode == 0


def test_a_working_thread_is_waited_for(tmp_path):
    marker = tmp_path / "thread-finished"
    done = run_python(
        "import threading, time\n"
        "from kandisc.entry import exit_now\n"
        f"def work():\n    time.sleep(0.5)\n    open({str(marker)!r}, 'w').write('yes')\n"
        "threading.Thread(target=work).start()\n"
        "exit_now(4)\n"
    )
    assert done.returncode == 4
    assert marker.read_text() == "yes"


def test_a_profiled_command_exits_normally_so_the_profile_is_written(tmp_path):
    script, stats = tmp_path / "cmd.py", tmp_path / "profile.out"
    script.write_text("from kandisc.entry import exit_now\nexit_now(5)\n")
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats), str(script)], capture_output=True, timeout=120
    )
    assert stats.exists() and stats.stat().st_size > 0, done.stderr  # cProfile itself then exits 0


def test_the_console_script_collects_garbage_rarely_and_a_library_import_leaves_the_collector_alone():
    from kandisc.gc_policy import THRESHOLDS

    script = (
        "import gc, kandisc.cli, kandisc.entry\n"
        "kandisc.cli.main = lambda: print(gc.get_threshold())\n"
        "kandisc.entry.main()\n"
    )
    done = run_python(script)
    assert (done.returncode, done.stdout.strip()) == (0, str(THRESHOLDS))
    done = run_python("import gc, kandisc.api, kandisc.fitting\nprint(gc.get_threshold())")
    assert done.stdout.strip() == "(700, 10, 10)"  # Python's defaults: a notebook keeps its own
