"""`python -m warriorflow.cli ...`: what worker processes and pods run."""

import sys

from warriorflow.cli.app import main

sys.exit(main())
