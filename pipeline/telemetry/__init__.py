"""The telemetry flow (README.md in this folder):
`luigi --module pipeline.telemetry telemetry.<Task>`.

Every task defined under this package is in the Luigi namespace ``telemetry``, so the luigid UI
groups them by flow and the task family names the flow (``telemetry.<Task>``).
"""

import luigi

luigi.namespace("telemetry", scope=__name__)

from pipeline.telemetry import tasks  # noqa: E402,F401  registers the tasks for `luigi --module`
