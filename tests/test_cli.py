import subprocess
import sys

from hampart import __version__
from hampart.cli import main


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "hampart.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"hampart {__version__}"
    assert main([]) == 1


def test_slice_path_does_not_import_torch():
    """Reusing partitions must start fast: the slice command's imports leave torch out."""
    code = ("import sys, hampart.cli, hampart.partition.commands, hampart.inspect; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_readme_python_example_runs_and_prints_the_shapes_it_promises():
    """The README's Python block runs, and prints the block shapes its comment states: 324
    atoms' node blocks and one edge block per graph edge, 10 x 10 (SZV union basis)."""
    import contextlib
    import io
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    printed, namespace = io.StringIO(), {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    n_edges = namespace["graph"].n_edges
    assert n_edges > 324  # a real graph: several neighbours per atom
    assert printed.getvalue().strip() == f"(324, 10, 10) ({n_edges}, 10, 10)"
    assert "# (324, 10, 10) (n_edges, 10, 10)" in code  # what the README tells the reader
