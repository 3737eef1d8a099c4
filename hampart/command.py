"""The shape of one CLI command: parse arguments into a frozen config, then ``run(config)``.

Each area of the package defines its commands next to its code (``hampart/<area>/commands.py``)
as :class:`Command` objects; :mod:`hampart.cli` only collects them. Tests call ``run`` directly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Command", "json_object"]


@dataclass(frozen=True)
class Command:
    """``add_arguments(parser)``; ``make_config(args) -> frozen config``; ``run(config) -> int``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    make_config: Callable[[argparse.Namespace], Any]
    run: Callable[[Any], int]


def json_object(text: str) -> dict:
    """argparse ``type`` for options taking a JSON object (``--model '{"lmax": 4}'``)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at character {e.pos}); "
                                         'write e.g. \'{"lmax": 4, "channels": 16}\'') from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('give a JSON object, e.g. \'{"lmax": 4}\'')
    return value
