# Helpers shared by the scripts in this folder. Source it; it defines functions only.
# shellcheck shell=bash

say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# May this script run commands as root (it is root, or sudo works without a password)?
root_permitted() {
    [ "$(id -u)" = 0 ] && return 0
    have sudo && sudo -n true >/dev/null 2>&1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        sudo -n "$@"
    fi
}

_APT_UPDATED=0

# apt_install PACKAGE...: install Debian packages non-interactively (callers check
# root_permitted first). Updates the package lists once per run.
apt_install() {
    have apt-get || return 1
    local log status
    log=$(mktemp)
    {
        if [ "$_APT_UPDATED" = 0 ]; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        fi &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
    } >"$log" 2>&1
    status=$?
    if [ "$status" = 0 ]; then
        _APT_UPDATED=1
    else
        cat "$log" >&2 # show apt's own words only when it failed
    fi
    rm -f "$log"
    return "$status"
}

# clamav_installed: clamd (ClamAV's daemon) and sigtool are both there (the upload tests run
# a private clamd with a test signature made by sigtool; see scripts/clamd.py).
clamav_installed() {
    { have clamd || [ -x /usr/sbin/clamd ]; } && { have sigtool || [ -x /usr/bin/sigtool ]; }
}

# python_ok PATH: the interpreter exists and is Python 3.11 or newer.
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# find_python: print the first Python >= 3.11 among $PYTHON, python3, python3.13 ... python3.11.
find_python() {
    local candidate path
    for candidate in ${PYTHON:-} python3 python3.14 python3.13 python3.12 python3.11; do
        path=$(command -v "$candidate" 2>/dev/null) || continue
        if python_ok "$path"; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

# sha256 of files, portable between GNU coreutils and BSD/macOS.
file_hash() {
    if have sha256sum; then
        cat "$@" | sha256sum | cut -d' ' -f1
    else
        cat "$@" | shasum -a 256 | cut -d' ' -f1
    fi
}

# seconds since the epoch (for timings)
now() { date +%s; }

# ensure_venv VENV SCRIPT: a working virtualenv of Python 3.11+ at VENV. Creates it when
# missing or broken; when the venv module is missing, installs Debian's package if root (or
# passwordless sudo) is available, else dies saying what to install. SCRIPT names the caller
# in messages ("run SCRIPT again").
ensure_venv() {
    local venv=$1 script=$2 python3_bin version venv_pkg
    if [ -x "$venv/bin/python" ] && python_ok "$venv/bin/python"; then
        return 0
    fi
    python3_bin=$(find_python) || die "Python 3.11 or newer is needed; found: $(python3 --version 2>&1 || echo 'no python3').
Install it (Debian 12, Ubuntu 24.04 and newer have it), then run $script again:
    apt-get install python3 python3-venv"
    step "creating $venv with $python3_bin ($("$python3_bin" --version 2>&1))"
    rm -rf "$venv"
    if "$python3_bin" -m venv "$venv" >/dev/null 2>&1; then
        return 0
    fi
    rm -rf "$venv"
    version=$("$python3_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    # Debian's own python3 takes python3-venv; another Debian Python its versioned package.
    if [ "$(readlink -f "$python3_bin")" = "$(readlink -f /usr/bin/python3 2>/dev/null)" ]; then
        venv_pkg=python3-venv
    else
        venv_pkg="python${version}-venv"
    fi
    if have apt-get && root_permitted; then
        say "python3 -m venv failed (ensurepip missing): installing $venv_pkg with apt-get"
        apt_install "$venv_pkg" || die "apt-get install $venv_pkg failed"
        "$python3_bin" -m venv "$venv" >/dev/null 2>&1 || die "python3 -m venv still fails after installing $venv_pkg"
    else
        die "'$python3_bin -m venv' failed: the venv module is missing.
Install it as root, then run $script again:
    apt-get install $venv_pkg"
    fi
}

# ensure_installed VENV ROOT EXTRA MODULES: `pip install -e ROOT[EXTRA]` (EXTRA may be empty)
# unless pyproject.toml, the Python version and the checkout are unchanged since the last
# install, the MODULES (space-separated) import, and the editable install points at ROOT.
ensure_installed() {
    local venv=$1 root=$2 extra=$3 modules=$4 py="$1/bin/python" spec stamp want
    spec="$root"
    [ -n "$extra" ] && spec="$root[$extra]"
    stamp="$venv/.openar-deps-${extra:-base}"
    want="$(file_hash "$root/pyproject.toml") $("$py" -c 'import sys; print(sys.version)' | head -1) $root"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" - "$root/src" $modules <<'EOF' >/dev/null 2>&1
import importlib, pathlib, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
import openar
sys.exit(0 if pathlib.Path(openar.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)
EOF
    then
        say "dependencies: up to date ($venv, pyproject.toml unchanged)"
        return 0
    fi
    step "installing OpenAR${extra:+ with its $extra dependencies} into $venv"
    rm -f "$stamp"
    "$py" -m pip install -q -e "$spec" || die "pip install -e '$spec' failed"
    printf '%s\n' "$want" >"$stamp"
}
