import sys

from console.serve.cli import main

sys.exit(main())
