"""The ``mangaassist`` console script (typer)."""
