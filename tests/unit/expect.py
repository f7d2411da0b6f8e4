"""Shared expectations of the tests: an error the user sees is one line."""

from contextlib import contextmanager

import pytest

from vaecam.errors import DataError


@contextmanager
def data_error(match: str):
    """Expect a DataError whose one-line message matches ``match``."""
    with pytest.raises(DataError, match=match) as info:
        yield info
    assert "\n" not in str(info.value)
