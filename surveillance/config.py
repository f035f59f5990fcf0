"""Surveillance's ``[audit]`` section: the audit chain (``surveillance.chain``) and how often
its head is signed.

Optional: without ``[audit]`` the chain runs with these defaults; ``enabled = false`` turns it
off (verification then reports the commands after its last entry as not chained).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.configfile import Table

__all__ = ["AuditConfig", "read_audit"]


@dataclass(frozen=True, slots=True)
class AuditConfig:
    enabled: bool = True
    #: entries between two signed checkpoints of the head
    checkpoint_every: int = 10000
    #: seconds between two checkpoints when entries were added (and one at every stop)
    checkpoint_interval_s: int = 60


def read_audit(root: Table) -> AuditConfig:
    """``[audit]``, optional; absent keys take the defaults."""
    if "audit" not in root:
        return AuditConfig()
    table = root.table("audit")
    d = AuditConfig()
    config = AuditConfig(
        enabled=table.optional_boolean("enabled", d.enabled),
        checkpoint_every=table.optional_integer("checkpoint_every", d.checkpoint_every, 1, 1 << 32),
        checkpoint_interval_s=table.optional_integer(
            "checkpoint_interval_s", d.checkpoint_interval_s, 1, 86400
        ),
    )
    table.finish()
    return config
