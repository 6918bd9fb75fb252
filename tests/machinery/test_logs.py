"""machinery/logs.py: which group a question's tokens are logged under."""

import numpy as np

from machinery import logs


def test_tokens_by_level_uses_level_else_category_else_benchmark():
    examples = [dict(level="easy", category="x"), dict(category="(GradeSchool) Geometric"), dict(benchmark="mv"), {}]
    groups = [logs.group_of(e) for e in examples]
    assert groups == ["easy", "(GradeSchool) Geometric", "mv", None]
    shaped = dict(keep=np.ones(4, bool), hard=np.zeros(4, bool), reward=np.zeros((4, 2)), kl_coef=np.zeros(4))
    tokens = np.array([[10, 20], [30, 50], [1, 1], [7, 7]])
    metrics = logs.step_metrics(0, shaped, np.zeros((4, 2)), np.zeros((4, 2)), tokens, np.zeros(8, bool),
                                dict(loss=None), groups)
    assert metrics["tokens_by_level"] == {"easy": 15.0, "(GradeSchool) Geometric": 40.0, "mv": 1.0}
