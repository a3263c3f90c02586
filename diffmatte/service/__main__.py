"""``python -m diffmatte.service``: the same as ``diffmatte serve``."""

import argparse
import sys

from .cli import add_arguments, run


def main(argv=None) -> int:
    """Parse ``serve`` options and run the service."""
    parser = argparse.ArgumentParser(prog="python -m diffmatte.service")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
