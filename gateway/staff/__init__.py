"""Staff login and audit: operator accounts (password and TOTP), roles, sessions, service
tokens, and the events an audit trail records. ``roles`` says what each role may do;
``operators`` keeps the accounts under ``<data_dir>/staff/``, never in the journal.
"""
