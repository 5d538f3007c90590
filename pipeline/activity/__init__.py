"""The activity flow (README.md in this folder):
`luigi --module pipeline.activity activity.<Task>`.

Every task defined under this package is in the Luigi namespace ``activity``, so the luigid UI
groups them by flow and the task family names the flow (``activity.<Task>``).
"""

import luigi

luigi.namespace("activity", scope=__name__)

from pipeline.activity import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
