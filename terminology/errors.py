"""Errors that mean "the user gave us bad input": the CLI turns every one of them into exit code 2."""


class ClinassayInputError(Exception):
    """Bad input or usage: a file, a code, a config value. The message is shown to the user as is."""
