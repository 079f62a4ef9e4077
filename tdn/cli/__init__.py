"""One module per ``python -m tdn`` command."""
