"""The retention flow (README.md in this folder):
`luigi --module pipeline.retention retention.<Task>`.

Every task defined under this package is in the Luigi namespace ``retention``, so the luigid UI
groups them by flow and the task family names the flow (``retention.<Task>``).
"""

import luigi

luigi.namespace("retention", scope=__name__)

from pipeline.retention import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
