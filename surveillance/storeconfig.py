"""Surveillance's ``[surveillance_store]`` section: where alerts and cases are kept, and who the
venue is in a suspicious transaction and order report (``surveillance.stor``, section 1).

Optional, as every key in it::

    [surveillance_store]
    url = "postgresql+psycopg://surveillance@db/venue"  # default: SQLite under data_dir
    entity_name = "Example Exchange B.V."   # the reporting entity; default "venue"
    entity_lei = "5493001KJTIIGC8Y1R12"     # its LEI (ISO 17442), if it has one
    entity_address = "1 Example Street, 1000 AA Amsterdam, NL"
    contact = "compliance@example.com"      # who answers the authority's questions
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.configfile import Table

__all__ = ["AlertStoreConfig", "read_alert_store"]

SECTION = "surveillance_store"
_URL_SCHEMES = ("sqlite:", "postgresql:", "postgresql+psycopg:")


@dataclass(frozen=True, slots=True)
class AlertStoreConfig:
    #: SQLAlchemy URL; "": the default under the venue's data_dir (``AlertStoreConfig.url_for``)
    url: str = ""
    entity_name: str = "venue"
    entity_lei: str = ""
    entity_address: str = ""
    contact: str = ""

    def url_for(self, data_dir: Path) -> str:
        """The URL to open: ``url``, or SQLite under ``data_dir``."""
        return self.url or default_url(data_dir)


def default_url(data_dir: Path) -> str:
    """SQLite at ``<data_dir>/surveillance/surveillance.sqlite``."""
    return f"sqlite:///{Path(data_dir) / 'surveillance' / 'surveillance.sqlite'}"


def read_alert_store(root: Table) -> AlertStoreConfig:
    """``[surveillance_store]``, optional; absent keys take the defaults."""
    if SECTION not in root:
        return AlertStoreConfig()
    table = root.table(SECTION)
    url = table.optional_string("url")
    if url and not url.startswith(_URL_SCHEMES):
        table.fail("url", "must be a sqlite:/// or postgresql+psycopg:// URL")
    config = AlertStoreConfig(
        url=url,
        entity_name=table.optional_string("entity_name").strip() or "venue",
        entity_lei=table.optional_string("entity_lei").strip(),
        entity_address=table.optional_string("entity_address").strip(),
        contact=table.optional_string("contact").strip(),
    )
    table.finish()
    return config
