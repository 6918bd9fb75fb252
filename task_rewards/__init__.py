"""Your own task's reward: `--reward-fn path.py:function` loaded from a file and checked call by call (reward_files),
the EasyR1 / FAST authors' signature, so a new task needs no fork (docs/reward-functions.md)."""
