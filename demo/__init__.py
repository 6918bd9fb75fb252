"""The offline demo: the shipped model (model/, loaded as-is), how it was made (make_model, warm_start), the tiny
random checkpoints the tests build (tiny_model), the toy-scale study (reproduce) and demo benchmark files."""
