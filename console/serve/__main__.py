import sys

from mlops_console.serve.cli import main

sys.exit(main())
