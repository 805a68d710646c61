"""`python -m engine.train` (and `torchrun -m engine.train`): the command line in engine.train.cli."""

import sys

from engine.train.cli import exit_code, main

if __name__ == "__main__":
    sys.exit(exit_code(main()))
