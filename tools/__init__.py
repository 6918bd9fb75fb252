"""Tools that measure the project: the answer checker against other libraries (measure_answers, mathverify_suite),
and the peak memory of each phase of a step at real model sizes (measure_memory); run from the repository root with
python -m tools.NAME."""
