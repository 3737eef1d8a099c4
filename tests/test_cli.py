import subprocess
import sys

from hampart import __version__
from hampart.cli import main


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "hampart.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"hampart {__version__}"
    assert main([]) == 1
