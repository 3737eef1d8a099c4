"""The one exception a user's input can cause, and the one warning.

Every message names the offending file (or argument) and says how to fix it, so the CLI
can print it as is and exit with status 2 (errors) or go on (warnings: input that is valid
but probably not what the user meant).
"""

__all__ = ["InputError", "InputWarning"]


class InputError(ValueError):
    """Bad user input: the message names the file or argument and the fix."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what = str(what)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.what}: {problem}. Fix: {fix}")


class InputWarning(UserWarning):
    """Input that works but looks wrong: names the file, what looks wrong, what to check."""

    def __init__(self, what: str, problem: str, fix: str):
        super().__init__(f"{what}: {problem}. Check: {fix}")
