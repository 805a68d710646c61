"""Load: the weights as the product of training. Checkpoints and their timeline, what a weights file holds and
weighs, int8 quantisation done for real, and the reference model shipped in data/reference/."""
