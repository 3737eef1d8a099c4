"""The one exception a user's input can cause.

Every message names the offending file (or argument) and says how to fix it, so the CLI
can print it as is and exit with status 2.
"""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: the message names the file or argument and the fix."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what = str(what)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.what}: {problem}. Fix: {fix}")
