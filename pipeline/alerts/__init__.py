"""The alerts flow (README.md in this folder):
`luigi --module pipeline.alerts alerts.<Task>`.

Every task defined under this package is in the Luigi namespace ``alerts``, so the luigid UI
groups them by flow and the task family names the flow (``alerts.<Task>``).
"""

import luigi

luigi.namespace("alerts", scope=__name__)

from pipeline.alerts import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
