"""The runtime folder and ledger every stage of ingestion works on (the stages are mixins of
``pipeline.inbox.chain.Inbox``: register, validate/transform, load, archive/quarantine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.settings import Paths
from flags.ledger import Ledger
from pipeline.inbox.contract import CONTRACTS, Contract


@dataclass
class Workspace:
    """Where a file is while it is being ingested, and the ledger that says how far it got."""

    paths: Paths
    ledger: Ledger
    # Tables loaded while ``LoadStage.summaries_deferred`` is open: their BRIN ranges are
    # summarised once when it closes (None: after each load).
    unsummarized: set[str] | None = field(default=None, repr=False)

    def work_dir(self, file_id: str) -> Path:
        return self.paths.work / file_id

    def lock_path(self, key: str) -> Path:
        return self.paths.work / ".locks" / f"{key}.lock"

    def contract(self, flag: dict[str, Any]) -> Contract:
        return CONTRACTS[flag["dataset"]]

    # Provided by the stages that own them (the chain combines every stage).
    def quarantine(self, file_id: str, reason: str) -> None:
        raise NotImplementedError

    def archive(self, file_id: str) -> str:
        raise NotImplementedError

    def process(self, file_id: str) -> str:
        raise NotImplementedError
