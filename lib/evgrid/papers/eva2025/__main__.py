"""``python -m evgrid.papers.eva2025 month YYYY-MM``: one month of the market study (a DVC stage)."""

import sys

from evgrid.papers.eva2025.study import main

sys.exit(main())
