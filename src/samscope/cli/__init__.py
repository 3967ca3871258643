"""The ``samscope`` command: thin Typer commands over library functions."""
