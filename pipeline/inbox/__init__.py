"""The inbox flow (README.md in this folder):
`luigi --module pipeline.inbox inbox.<Task>`.

Every task defined under this package is in the Luigi namespace ``inbox``, so the luigid UI
groups them by flow and the task family names the flow (``inbox.<Task>``).
"""

import luigi

luigi.namespace("inbox", scope=__name__)

from pipeline.inbox import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
