"""`--reward-fn path.py:function`: a reward function from the user's own file, for training and eval.py alike.

The signature is the one EasyR1 and the FAST authors' released code take (`reward_function: path.py:compute_score`):
`function(response, ground_truth)` for every sampled response, returning a float or a dict with `overall` and
optional named parts (`accuracy`, `format`, ...). How the parts meet FAST (docs/reward-functions.md): `overall`
replaces r_acc + w r_fmt (FAST's 0.5 r_t is still added); `accuracy` > 0 marks a response correct, which drives the
pass rate, Eq. 4's correct flag, the curriculum, Eq. 5 and the accuracy metric. Every part is logged.

Whether a function returns a float or a dict is only known once it is called, so a function without an `accuracy`
part is refused on its first call when the run needs one (`accuracy_users`). Any problem is a RewardFnError, a
DataError: one line naming the file, the data row and the value, exit code 2 like other bad input.
"""

import hashlib
import importlib.util
import math
import numbers
import os
import sys

import numpy as np

from data_loading.loader import DataError


class RewardFnError(DataError):
    """The reward file, its function or one of its answers is unusable: str() is 'path.py:function: what'."""


def accuracy_users(args):
    """What in a training run's settings needs each response's correctness (the pass rate and what reads it), as
    words for the refusal; [] when nothing does."""
    users = [(args.curriculum not in (None, "none"), f"the {args.curriculum} curriculum"),
             (args.dynamic_kl, "dynamic KL (Eq. 5)"), (args.length_reward, "the thinking reward (Eq. 4)"),
             (args.drop_pass_0_1, "--drop-pass-0-1"), (args.eval_every and not args.eval_benchmark, "val_accuracy")]
    return [words for used, words in users if used]


def load(spec, accuracy_needed_by=()):
    """`path.py:function` -> a RewardFunction; a missing file, a file that fails to import or a missing function is
    a RewardFnError now, before any model loads. `accuracy_needed_by`: what reads an `accuracy` part, in words
    (accuracy_users)."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise RewardFnError(f"--reward-fn {spec}", "give it as path.py:function (for example "
                            "docs/examples/cls_reward.py:compute_score)")
    if not os.path.isfile(path):
        raise RewardFnError(f"--reward-fn {spec}", f"no such file: {path}")
    # the user's own file, imported under a name of its own: two files both called reward.py do not collide, and
    # nothing of the project's is shadowed. Executed afresh on every load: an edited file is read as it is now.
    module_name = "fast_grpo_reward_fn_" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
    try:
        module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(module_name, path))
        sys.modules[module_name] = module  # dataclasses and pickling in the file look themselves up here
        module.__spec__.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 -- the user's code: whatever it raises, one line
        sys.modules.pop(module_name, None)
        raise RewardFnError(f"--reward-fn {spec}", "the file cannot be imported",
                            f"{type(error).__name__}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        defined = sorted(key for key, value in vars(module).items() if callable(value) and not key.startswith("_")
                         and getattr(value, "__module__", None) == module_name)
        raise RewardFnError(f"--reward-fn {spec}", f"{path} has no function {name!r}",
                            f"it defines: {', '.join(defined) or 'none'}")
    return RewardFunction(spec, function, list(accuracy_needed_by))


class RewardFunction:
    """The loaded function, called per response and checked: every answer a finite number, or a dict with `overall`
    whose parts are finite numbers and the same in every answer (they are logged per step)."""

    def __init__(self, spec, function, accuracy_needed_by=()):
        self.spec, self.function, self.accuracy_needed_by = spec, function, list(accuracy_needed_by)
        self.parts = None  # the part names of its first answer ("overall" alone for a float); later ones must match

    def __call__(self, responses, ground_truths, rows):
        """{part: float array over the responses}, `overall` always among them. `rows`: each response's data row
        (its question's position in the data as loaded), named when something is wrong."""
        values = {}
        for i, (response, truth, row) in enumerate(zip(responses, ground_truths, rows)):
            try:
                answer = self.function(response, truth)
            except Exception as error:  # noqa: BLE001 -- the user's code: whatever it raises, one line
                self.fail(row, response, truth, f"raised {type(error).__name__}: {error}")
            parts = self.check(answer, row, response, truth)
            for key, value in parts.items():
                values.setdefault(key, np.zeros(len(responses)))[i] = value
        return values

    def check(self, answer, row, response, truth):
        """One answer -> {part: float}; anything but a finite number or a dict of them with `overall` stops the run."""
        if is_number(answer):
            parts = {"overall": float(answer)}
        elif isinstance(answer, dict) and "overall" in answer and all(map(is_number, answer.values())):
            parts = {str(key): float(value) for key, value in answer.items()}
        else:
            self.fail(row, response, truth, f"returned {short(answer)}, not a finite number or a dict of them with "
                      "'overall' (and optional parts such as 'accuracy' and 'format')")
        if self.parts is None:
            if "accuracy" not in parts and self.accuracy_needed_by:
                form = "a float" if is_number(answer) else f"a dict without 'accuracy' ({short(answer)})"
                self.fail(row, response, truth, f"returned {form}, but {', '.join(self.accuracy_needed_by)} read "
                          "which responses are correct: return a dict with 'overall' and 'accuracy' (> 0: correct; "
                          "docs/reward-functions.md)")
            self.parts = list(parts)
        elif sorted(parts) != sorted(self.parts):
            self.fail(row, response, truth, f"returned {short(answer)}, parts {sorted(parts)} where its first answer "
                      f"had {sorted(self.parts)} (they are logged per step: keep them the same)")
        return parts

    def fail(self, row, response, truth, what):
        raise RewardFnError(f"--reward-fn {self.spec}", f"data row {row} (ground truth {short(truth)}, response "
                            f"{short(response)}): {what}")


def is_number(value):
    """A finite real number (int, float, bool, numpy scalar): what a reward can be."""
    return isinstance(value, (numbers.Real, np.bool_)) and math.isfinite(float(value))


def short(value, limit=80):
    """repr of `value`, cut to `limit` characters, with its type when that is not obvious."""
    text = repr(value)
    text = text if len(text) <= limit else text[:limit] + "..."
    return text if isinstance(value, (str, dict, int, float)) else f"{text} ({type(value).__name__})"
