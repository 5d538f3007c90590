"""The reports flow (README.md in this folder):
`luigi --module pipeline.reports reports.<Task>`.

Every task defined under this package is in the Luigi namespace ``reports``, so the luigid UI
groups them by flow and the task family names the flow (``reports.<Task>``).
"""

import luigi

luigi.namespace("reports", scope=__name__)

from pipeline.reports import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
