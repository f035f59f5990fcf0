"""The venue's FIX acceptor, built from ``[fix]``: sessions, stores, dictionary, application.

The composition root for FIX: it turns :class:`venue.config.FixConfig` into
:class:`gateway.fix.session.Session` objects (one per ``[[fix.sessions]]``, each with its
message store under ``<data_dir>/fix``) and a listening :class:`gateway.fix.acceptor.FixAcceptor`.
"""

from __future__ import annotations

from pathlib import Path

from gateway.fix.acceptor import FixAcceptor
from gateway.fix.dictionary import DataDictionary, load_dictionary
from gateway.fix.echo import EchoApplication
from gateway.fix.session import Application, Session, SessionConfig
from gateway.fix.store import open_store
from venue.config import FixConfig

__all__ = ["FIX_STORE_DIR", "build_acceptor"]

FIX_STORE_DIR = "fix"


def build_acceptor(config: FixConfig, data_dir: Path) -> FixAcceptor:
    """The acceptor with every configured session; raises ``DictionaryError`` for a bad
    dictionary and ``StoreError`` for a store that cannot be opened."""
    dictionary: DataDictionary = load_dictionary(config.dictionary)
    application: Application = EchoApplication()
    store_dir = data_dir / FIX_STORE_DIR if config.store == "file" else None
    sessions = []
    for cfg in config.sessions:
        session_config = SessionConfig(
            sender_comp_id=config.sender_comp_id,
            target_comp_id=cfg.target_comp_id,
            reset_on_logon=cfg.reset_on_logon,
            reset_on_logout=cfg.reset_on_logout,
            reset_on_disconnect=cfg.reset_on_disconnect,
            reset_time_utc=cfg.reset_time_utc,
            max_latency_s=float(config.max_latency_s),
            throttle_per_s=cfg.throttle_per_s,
        )
        store = open_store(store_dir, session_config.key, fsync=config.store_fsync)
        sessions.append(Session(session_config, dictionary, store, application))
    return FixAcceptor(
        sessions,
        host=config.host,
        port=config.port,
        max_connections=config.max_connections,
    )
