"""Extract: the text a model learns from. The corpora that ship with the course, a learner's uploads, a
synthetic web crawl with a real crawl's mess, cleaning step by step, and exact and near-duplicate removal."""
