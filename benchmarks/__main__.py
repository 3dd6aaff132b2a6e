"""``python -m benchmarks``: runs the suite in :mod:`benchmarks.run`."""

from benchmarks.run import main

raise SystemExit(main())
