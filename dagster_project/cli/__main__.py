"""`python -m dagster_project.cli`."""

import sys

from dagster_project.cli import main

sys.exit(main())
