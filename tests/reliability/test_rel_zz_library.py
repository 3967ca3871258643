"""Runs last: not one byte of the shared inputs changed during the whole suite."""

import _library


def test_no_input_was_modified(library, library_digest):
    assert _library.digest(library) == library_digest
