"""Training and data: the generated motion dataset (``synth``), labelled video folders (``data``), the
training loop, DDP-ready (``loop``), and evaluation over a dataset (``evaluation``).
"""
