"""Staff login and audit: operator accounts (password and TOTP), roles, sessions, service
tokens, four-eyes approvals, and the events an audit trail records. ``roles`` says what each
role may do; ``operators`` keeps the accounts and ``approvals`` the held requests under
``<data_dir>/staff/``, never in the journal.
"""

#: The folder under the data folder that holds the staff stores.
STAFF_DIR = "staff"
