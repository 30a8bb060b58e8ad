"""`import gpbo` is light and silent: no botorch, no output."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_lazy_and_silent():
    code = (
        "import sys, gpbo\n"
        "heavy = [m for m in ('botorch', 'gpytorch', 'torch', 'yaml', 'matplotlib', 'ray')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "HEAVY="
    assert done.stderr == ""


def test_lazy_public_names_resolve():
    import gpbo

    for name in gpbo.__all__:
        assert getattr(gpbo, name) is not None
    assert callable(gpbo.optimize) and gpbo.Study.__name__ == "Study"
    # what Study.ask documents raising, for an ask/tell grid loop to catch
    assert issubclass(gpbo.SpaceExhausted, gpbo.GpboError)
    assert gpbo.strategies.Grid(levels=3).levels == 3
    assert "optimize" in dir(gpbo)
    assert callable(gpbo.plots.plot)  # the README's gpbo.plots.plot after a plain import gpbo
    assert gpbo.surrogate.AUTO_CUDA_FROM > 0  # the README names it after a plain import gpbo
