"""The sales flow (README.md in this folder):
`luigi --module pipeline.sales sales.<Task>`.

Every task defined under this package is in the Luigi namespace ``sales``, so the luigid UI
groups them by flow and the task family names the flow (``sales.<Task>``).
"""

import luigi

luigi.namespace("sales", scope=__name__)

from pipeline.sales import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
