"""The paper's benchmarks (MathVista, MATH-Vision, MathVerse, WeMath, DynaMath, Geometry3K): read in their published
schemas, prompted, sampled and scored by each benchmark's own rule, in the paper's table. docs/evaluation.md."""
