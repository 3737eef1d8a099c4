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


def test_readme_python_example_runs():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
