"""`python -m bench NAME`: the benchmark commands of bench.cli; `gpu` takes its own options (bench.gpu.main)."""

import sys

from bench.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["gpu"]:
        from bench import gpu

        sys.exit(gpu.main(sys.argv[2:]))
    sys.exit(main())
