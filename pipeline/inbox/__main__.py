"""``python -m pipeline.inbox watch``: the watcher (see ``pipeline.inbox.watch``)."""

from pipeline.inbox.watch import main

raise SystemExit(main())
