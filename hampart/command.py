"""The shape of one CLI command: parse arguments into a frozen config, then ``run(config)``.

Each area of the package defines its commands next to its code (``hampart/<area>/commands.py``)
as :class:`Command` objects; :mod:`hampart.cli` only collects them. Tests call ``run`` directly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Command"]


@dataclass(frozen=True)
class Command:
    """``add_arguments(parser)``; ``make_config(args) -> frozen config``; ``run(config) -> int``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    make_config: Callable[[argparse.Namespace], Any]
    run: Callable[[Any], int]
