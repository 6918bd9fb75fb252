"""Answer checking: is a model's final answer equal to the gold one? Extraction, the grading rules, a bounded LaTeX
parser and numeric equivalence (docs/answers.md). rewards.py's r_acc calls it once; the benchmarks' rules use it."""
