"""`python -m filterlab.cluster`: the fan-out command (filterlab.cluster.submit)."""

import sys

from filterlab.cluster.submit import main

sys.exit(main())
