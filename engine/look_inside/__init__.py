"""Look inside: what a trained model does, as plain data for the pages. The embedding table as a map and
its neighbours, token groups, attention and the forward pass, and sampling knob by knob."""
