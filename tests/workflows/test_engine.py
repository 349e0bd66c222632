"""The workflow engine: cached, resumable steps; failures name the step and keep earlier results."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from wannmag.workflows.engine import Engine, Step, StepError


def make_steps(calls, fail_b=False, param=1):
    def a(ctx):
        calls.append("a")
        return {"x": param}

    def b(ctx):
        calls.append("b")
        if fail_b:
            raise ValueError("boom")
        return {"y": ctx["a"]["x"] * 10}

    def c(ctx):
        calls.append("c")
        (ctx.step_dir("c") / "plot.txt").write_text("figure")
        return {"z": ctx["b"]["y"] + 1}

    return [Step("a", a, params={"param": param}), Step("b", b, depends=("a",)), Step("c", c, depends=("b",))]


def test_steps_run_once_and_are_skipped_afterwards(tmp_path):
    calls = []
    res = Engine(tmp_path, make_steps(calls), log=lambda m: None).run()
    assert res["c"]["z"] == 11 and calls == ["a", "b", "c"]
    calls.clear()
    res = Engine(tmp_path, make_steps(calls), log=lambda m: None).run()
    assert calls == [] and res["c"]["z"] == 11
    # a changed parameter recomputes its step and everything downstream, nothing else
    calls.clear()
    res = Engine(tmp_path, make_steps(calls, param=2), log=lambda m: None).run()
    assert calls == ["a", "b", "c"] and res["c"]["z"] == 21


def test_failure_names_the_step_and_keeps_earlier_results(tmp_path):
    calls = []
    with pytest.raises(StepError, match="step 'b' failed"):
        Engine(tmp_path, make_steps(calls, fail_b=True), log=lambda m: None).run()
    assert json.loads((tmp_path / "steps" / "a.json").read_text())["x"] == 1
    assert (tmp_path / "steps" / "b.error.txt").exists() and not (tmp_path / "steps" / "b.json").exists()
    calls.clear()
    Engine(tmp_path, make_steps(calls), log=lambda m: None).run()
    assert calls == ["b", "c"]  # a was not recomputed
    assert not (tmp_path / "steps" / "b.error.txt").exists()


def test_kill_during_a_step_resumes_without_recomputing(tmp_path):
    script = tmp_path / "wf.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from wannmag.workflows.engine import Engine, Step
        log = Path({str(tmp_path / 'calls.txt')!r})
        def a(ctx):
            log.open('a').write('a\\n'); return {{'x': 1}}
        def b(ctx):
            log.open('a').write('b\\n')
            if sys.argv[1] == 'hang':
                Path({str(tmp_path / 'started')!r}).write_text('1'); time.sleep(60)
            return {{'y': 2}}
        Engine({str(tmp_path / 'run')!r}, [Step('a', a), Step('b', b, depends=('a',))], log=lambda m: None).run()
    """))
    proc = subprocess.Popen([sys.executable, str(script), "hang"])
    for _ in range(300):
        if (tmp_path / "started").exists():
            break
        import time
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "run" / "steps" / "a.json").exists() and not (tmp_path / "run" / "steps" / "b.json").exists()
    subprocess.run([sys.executable, str(script), "go"], check=True)
    assert (tmp_path / "calls.txt").read_text().split() == ["a", "b", "b"]  # a never recomputed
    assert json.loads((tmp_path / "run" / "steps" / "b.json").read_text())["y"] == 2


def test_bad_step_graph_is_refused(tmp_path):
    from wannmag.errors import WannmagError

    with pytest.raises(WannmagError, match="depends on"):
        Engine(tmp_path, [Step("b", lambda c: {}, depends=("a",)), Step("a", lambda c: {})])


def test_until_runs_only_the_step_and_its_dependencies(tmp_path):
    calls = []

    def side(ctx):
        calls.append("side")
        return {}

    def d(ctx):
        calls.append("d")
        return {"w": ctx["a"]["x"] + 100}

    steps = make_steps(calls)
    steps = steps[:1] + [Step("side", side, depends=("a",))] + steps[1:] + [Step("d", d, depends=("a",))]
    res = Engine(tmp_path, steps, log=lambda m: None).run(until="c")
    assert calls == ["a", "b", "c"] and "side" not in res and "d" not in res  # side is not needed for c
    calls.clear()
    res = Engine(tmp_path, steps, log=lambda m: None).run(until="d")
    assert calls == ["d"] and res["d"]["w"] == 101  # a is done, reused
    with pytest.raises(Exception, match="unknown step 'nope'"):
        Engine(tmp_path, steps, log=lambda m: None).run(until="nope")


def test_out_onto_a_file_is_one_error(tmp_path):
    from wannmag.errors import WannmagError

    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(WannmagError, match="is not a directory"):
        Engine(f, make_steps([]), log=lambda m: None)
