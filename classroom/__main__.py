"""`python -m classroom make | grade | table`, run from the repository root: see classroom/kit.py."""

from classroom import kit

if __name__ == "__main__":
    kit.main()
