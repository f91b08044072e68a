"""`python -m maas.cli`: the same as the `maas` command."""

import sys

from maas.cli.main import main

sys.exit(main())
