"""Engine command line: ``python -m engines --help``."""

from engines.cli import main

main()
