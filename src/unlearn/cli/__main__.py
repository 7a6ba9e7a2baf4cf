"""``python -m unlearn.cli`` (what `accelerate launch -m unlearn.cli` and a sweep's run processes start)."""

import sys

from unlearn.cli import main

sys.exit(main())
