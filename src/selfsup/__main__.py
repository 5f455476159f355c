"""`python -m selfsup` = the `selfsup` command."""

import sys

from selfsup.cli import main

sys.exit(main())
