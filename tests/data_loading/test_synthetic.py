"""The demo task: deterministic, correct answers, graded levels, a disjoint held-out set, JSONL export."""

import random
from collections import Counter

import numpy as np

from data_loading import loader, synthetic


def digit_cells(image):
    """Which of the 16 cells hold a (light) digit: any pixel much brighter than the background."""
    pixels = np.asarray(image.convert("L"), dtype=int)
    cells = pixels.reshape(synthetic.GRID, synthetic.CELL, synthetic.GRID, synthetic.CELL).max(axis=(1, 3))
    return [i for i, brightest in enumerate(cells.ravel()) if brightest > 200]


def test_same_seed_same_items_other_seed_other_items():
    a, b, c = synthetic.make_items(12, seed=5), synthetic.make_items(12, seed=5), synthetic.make_items(12, seed=6)
    assert [x["digits"] for x in a] == [x["digits"] for x in b]
    assert all(np.array_equal(np.asarray(x["image"]), np.asarray(y["image"])) for x, y in zip(a, b))
    assert [x["digits"] for x in a] != [x["digits"] for x in c]


def test_answers_are_the_sums_of_the_drawn_digits():
    for item in synthetic.make_items(60, seed=1):
        assert item["answer"] == str(sum(item["digits"]))
        assert len(digit_cells(item["image"])) == len(item["digits"])  # one drawn digit per listed digit
        low, high = synthetic.LEVELS[item["level"]]
        assert low <= len(item["digits"]) <= high
        assert all(1 <= d <= 9 for d in item["digits"])


def test_a_digit_is_drawn_where_the_layout_puts_it():
    cells = {0: 7, 5: 3, 15: 1}
    assert digit_cells(synthetic.draw(cells)) == [0, 5, 15]
    # empty cells are exactly the background colour, which the processor normalises to about 0
    empty = np.asarray(synthetic.draw({}))
    assert (empty == np.array(synthetic.BACKGROUND, dtype=np.uint8)).all()


def test_levels_are_balanced_and_the_test_set_has_300_per_level():
    counts = Counter(item["level"] for item in synthetic.split("test"))
    assert counts == {"easy": 300, "medium": 300, "hard": 300}
    assert Counter(item["level"] for item in synthetic.make_items(30, seed=2)) == {"easy": 10, "medium": 10, "hard": 10}


def test_held_out_set_is_disjoint_from_training():
    key = lambda item: np.asarray(item["image"]).tobytes()  # noqa: E731
    train = {key(item) for item in synthetic.split("train", 3000) if item["level"] != "easy"}
    test = [key(item) for item in synthetic.split("test") if item["level"] != "easy"]
    # (easy items have only 16 x 9 possible images, so those repeat by construction)
    assert not any(k in train for k in test)


def test_jsonl_export_round_trips_through_the_loader(tmp_path):
    items = synthetic.make_items(6, seed=3)
    examples, skipped = loader.load_jsonl(synthetic.export_jsonl(items, str(tmp_path), "test"))
    assert skipped == {} and len(examples) == 6
    for item, example in zip(items, examples):
        assert (example["question"], example["answer"], example["level"]) == (item["question"], item["answer"],
                                                                              item["level"])
        assert np.array_equal(np.asarray(loader.load_image(example["image"])), np.asarray(item["image"]))


def test_reasoning_form_adds_with_running_sums():
    text = synthetic.long_reasoning([4, 1, 7])
    assert "4 + 1 = 5." in text and "5 + 7 = 12." in text and text.endswith("the sum is 12.")
    rng = random.Random(0)
    item = synthetic.make_item(rng, "easy")
    assert synthetic.response(item, "short") == f"<think></think><answer>{item['answer']}</answer>"


def test_glance_estimate_reads_one_digit_and_rounds_a_sum_to_the_nearest_5():
    assert synthetic.glance_estimate([7]) == "7"  # easy: reading is answering
    assert synthetic.glance_estimate([3, 4, 5]) == "10"  # 12 -> 10
    assert synthetic.glance_estimate([9, 4, 9, 4]) == "25"  # 26 -> 25
    assert synthetic.glance_estimate([1, 1, 1]) == "5"  # 3 -> 5
    assert synthetic.glance_estimate([5, 5, 5, 5, 5]) == "25"  # a multiple of 5 is right
    item = dict(digits=[8, 6, 4, 9], answer="27")
    assert synthetic.response(item, "short") == "<think></think><answer>25</answer>"
    assert synthetic.response(item, "long").endswith("the sum is 27.</think><answer>27</answer>")
    # on the test set, the estimate is right on every easy item and on about 1 in 5 of the others
    test_set = synthetic.split("test")
    right = {level: np.mean([synthetic.glance_estimate(i["digits"]) == i["answer"] for i in test_set
                             if i["level"] == level]) for level in synthetic.LEVELS}
    assert right["easy"] == 1.0 and 0.1 < right["medium"] < 0.3 and 0.1 < right["hard"] < 0.3
