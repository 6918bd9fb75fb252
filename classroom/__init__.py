"""The teaching kit, skip it to learn the method: `python -m classroom make` cuts assignments from the project's own
code (exercise functions blanked), `python -m classroom grade` grades them with the project's own tests. The
exercises are defined in exercises.py; kit.py is the command line, grading.py runs the tests against a folder."""
