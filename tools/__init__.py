"""Tools for measuring the project against other libraries (the answer checker against math-verify and mathruler);
run from the repository root with python -m tools.NAME."""
