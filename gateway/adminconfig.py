"""The gateway's ``[admin]`` section of the configuration file: where the operators' admin API
listens. Kept apart from the admin API's handlers so that reading the file needs no web server."""

from __future__ import annotations

from dataclasses import dataclass

from engine.configfile import Table

__all__ = ["AdminConfig", "read_admin"]


@dataclass(frozen=True, slots=True)
class AdminConfig:
    host: str
    port: int  # 0: any free port


def read_admin(root: Table) -> AdminConfig:
    table = root.table("admin")
    admin = AdminConfig(
        host=table.string("host"),
        port=table.integer("port", minimum=0, maximum=65535),
    )
    table.finish()
    return admin
