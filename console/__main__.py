import sys

from mlops_console.cli import main

sys.exit(main())
