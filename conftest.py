"""Root pytest configuration shared by the tests and the doctests in src/."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _numpy_print_options() -> Iterator[None]:
    """Doctests compare array reprs; some libraries (colour-science) change NumPy's
    print options on import, so every test starts from the defaults."""
    saved = np.get_printoptions()
    np.set_printoptions(legacy=False, sign="-")
    yield
    np.set_printoptions(**saved)
