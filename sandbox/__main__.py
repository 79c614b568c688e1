"""`python -m sandbox [--port N]`: the sandbox, as `make run` starts it without Slack tokens."""

from __future__ import annotations

import argparse
import sys

from sandbox.app import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="the console's port (default: $PORT, else 3000)")
    sys.exit(main(parser.parse_args().port))
