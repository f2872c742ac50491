import sys

from openar.cli import main

sys.exit(main())
