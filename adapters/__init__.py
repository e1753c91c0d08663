"""One module per platform behind one small interface (see :mod:`adapters.base`)."""
