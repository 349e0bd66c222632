"""The public entry points (issue 22 item 6): `wannmag.SpinModel`, `read_structure`, `read_w90`,
`wannmag.workflows.build_workflow` / `run_workflow` are the objects of their home modules, loaded on first use (a
bare `import wannmag` does not import the workflow layer); one TcResult per meaning (the RPA one is RPAResult)."""

import subprocess
import sys

import pytest


def test_public_names_are_the_home_objects():
    import wannmag
    from wannmag.magnetism import SpinModel
    from wannmag.structures import read_structure
    from wannmag.tightbinding.w90 import read_w90
    from wannmag.workflows import build_workflow as bw
    from wannmag.workflows.run import build_workflow, run_workflow

    assert wannmag.SpinModel is SpinModel and wannmag.read_structure is read_structure
    assert wannmag.read_w90 is read_w90 and wannmag.build_workflow is build_workflow is bw
    assert wannmag.run_workflow is run_workflow
    assert set(wannmag.__all__) >= {"SpinModel", "read_structure", "read_w90", "build_workflow", "run_workflow"}
    with pytest.raises(AttributeError):
        wannmag.no_such_thing  # noqa: B018


def test_import_wannmag_stays_light():
    code = "import sys, wannmag; print(int('wannmag.workflows.run' in sys.modules), int('numba' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0"]


def test_rpa_result_name():
    from wannmag.magnetism.anisotropy import RPAResult, TcResult
    from wannmag.magnetism.montecarlo.tc import TcResult as MCTcResult

    assert TcResult is RPAResult and MCTcResult is not RPAResult
    r = RPAResult(30.0, 20.0, 0.5, 64, True)
    assert RPAResult.from_dict(r.as_dict()) == r
