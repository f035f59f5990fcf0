# Shared set-up steps of scripts/start and scripts/test (sourced, not run).
# shellcheck shell=bash

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 DEBIAN_FRONTEND=noninteractive

# Make .venv with a working pip, installing python3-venv from apt if needed.
ensure_venv() {
    local python=${PYTHON:-python3}
    if [[ -x .venv/bin/python ]] && .venv/bin/python -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    rm -rf .venv
    if ! "$python" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        echo "scripts: $python cannot make a virtualenv; installing python3-venv with apt-get" >&2
        apt-get update -qq >/dev/null
        apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
    fi
}

# Install the project (with extras "$1", if any) unless pyproject.toml is unchanged since the last
# successful install; the install is editable, so source changes need no reinstall.
ensure_installed() {
    local extras=${1:-} target=. stamp
    [[ -n $extras ]] && target=".[$extras]"
    stamp=".venv/.installed${extras:+-$extras}"
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    .venv/bin/python -m pip install -q -e "$target"
    echo "$want" >"$stamp"
}

# The client libraries of the end-to-end tests of the Binance-dialect door (tests/clients/
# requirements.txt) in their own virtualenv, .venv-clients: ccxt pins shared packages exactly,
# so they never share the venue's .venv. Skipped when the stamp says the pinned file is
# installed. Never fails the set-up: the tests that need a client fail then, with its reason.
ensure_clients() {
    local requirements=tests/clients/requirements.txt stamp=.venv-clients/.installed want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -x .venv-clients/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    local python=${PYTHON:-python3}
    if ! [[ -x .venv-clients/bin/python ]] || ! .venv-clients/bin/python -m pip --version \
        >/dev/null 2>&1; then
        rm -rf .venv-clients
        if ! "$python" -m venv .venv-clients >/dev/null 2>&1; then
            echo "scripts: cannot make .venv-clients (see ensure_venv)" >&2
            rm -rf .venv-clients
            return 0
        fi
    fi
    echo "scripts: installing the client libraries into .venv-clients" >&2
    if .venv-clients/bin/python -m pip install -q -r "$requirements"; then
        echo "$want" >"$stamp"
    else
        echo "scripts: the client libraries could not be installed" >&2
    fi
    return 0
}

# PostgreSQL and Redis on 127.0.0.1, for the tests of the ledger and of scale-out. A server that
# is installed but not answering is started. PostgreSQL is installed with apt-get when there is
# none (a fresh machine): the cluster then gets the database `test` and the password `postgres`
# for the role `postgres`, which is what tests/conftest.py connects with by default
# (VENUE_TEST_PG_URL overrides it). Never fails: a test that cannot reach its server fails then.
ensure_services() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        echo "scripts: installing PostgreSQL with apt-get" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || true
    fi
    if ! pg_isready -q -h 127.0.0.1 >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
        local version
        for version in $(ls /etc/postgresql 2>/dev/null); do
            echo "scripts: starting PostgreSQL $version" >&2
            pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
        done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pg_isready -q -h 127.0.0.1 >/dev/null 2>&1 && break
            sleep 1
        done
    fi
    if pg_isready -q -h 127.0.0.1 >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1; then
        if ! runuser -u postgres -- psql -qtAc "select 1 from pg_database where datname='test'" \
            2>/dev/null | grep -q 1; then
            echo "scripts: creating the PostgreSQL database test" >&2
            runuser -u postgres -- createdb test >/dev/null 2>&1 || true
            runuser -u postgres -- psql -qc "alter role postgres password 'postgres'" \
                >/dev/null 2>&1 || true
        fi
    fi
    if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1; then
        echo "scripts: starting Redis" >&2
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            >/dev/null 2>&1 || true
    fi
    return 0
}

# Debian's chromium, which the staff console's browser test (tests/test_console_browser.py) drives
# through Playwright's Python package (a dev extra). Installed with apt-get when missing; never
# `playwright install`, which downloads a browser build of its own. Never fails: the browser test
# fails then, saying what is missing.
ensure_browser() {
    if command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1; then
        echo "scripts: installing chromium with apt-get" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq chromium >/dev/null 2>&1 || true
    fi
    command -v chromium >/dev/null 2>&1 || echo "scripts: chromium could not be installed" >&2
    return 0
}

# Debian's softhsm2: the PKCS#11 token custody keeps its keys in by default (SoftHSM2, its module
# at /usr/lib/softhsm/libsofthsm2.so and softhsm2-util). Tokens live under the venue's data
# folder (custody.softhsm), never /var/lib/softhsm. Installed with apt-get when missing. Never
# fails: the token's tests fail then (under CI) or are skipped, saying what is missing.
ensure_softhsm() {
    if command -v softhsm2-util >/dev/null 2>&1; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1; then
        echo "scripts: installing softhsm2 with apt-get" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq softhsm2 >/dev/null 2>&1 || true
    fi
    command -v softhsm2-util >/dev/null 2>&1 || echo "scripts: softhsm2 could not be installed" >&2
    return 0
}

# Compile the engine's hot modules with mypyc into .native/ (engine/_native.py). Needs a C
# compiler and Python's headers: installed with apt-get when missing. A failed build is not fatal
# on a developer's machine (the same source runs interpreted, only slower), but it is under CI
# (CI set and not empty): there the compiled build is what is being tested, and a silent fallback
# would test the interpreted code twice. Returns non-zero then.
ensure_native() {
    local include
    include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    if ! command -v gcc >/dev/null 2>&1 || [[ ! -f $include/Python.h ]]; then
        if command -v apt-get >/dev/null 2>&1; then
            echo "scripts: installing gcc and the Python headers with apt-get" >&2
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get install -y -qq gcc python3-dev >/dev/null 2>&1 || true
        fi
    fi
    if .venv/bin/python scripts/build_native.py; then
        return 0
    fi
    if [[ -n ${CI:-} ]]; then
        echo "scripts: the native build failed (CI is set, so this fails the run)" >&2
        return 1
    fi
    echo "scripts: running the interpreted engine" >&2
}
