# Sourced by the test scripts that run Node.js programs with locked npm dependencies.
#   npm_work_dir WHO SRC HERE PACKAGE FILE...
# Copies FILE... (package.json, package-lock.json and the program) from SRC to HERE when HERE is
# elsewhere (the build directory: a read-only checkout works), then installs the locked
# dependencies there with `npm ci` unless node_modules/PACKAGE is present. Serialised with flock:
# several test runs may share HERE. Fails with a message starting with WHO when node or npm is
# missing or npm ci fails.
npm_work_dir() {
    local who=$1 src=$2 here=$3 package=$4
    shift 4
    command -v node >/dev/null || { echo "$who: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
    if [ "$here" != "$src" ]; then
        mkdir -p "$here"
        local f
        for f in "$@"; do
            cmp -s "$src/$f" "$here/$f" || cp "$src/$f" "$here/$f"
        done
    fi
    if [ ! -d "$here/node_modules/$package" ]; then
        command -v npm >/dev/null || { echo "$who: npm is not installed (apt-get install npm)" >&2; exit 1; }
        (flock 9; [ -d "$here/node_modules/$package" ] ||
            (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)) 9>"$here/.npm-install.lock" ||
            { echo "$who: npm ci failed in $here" >&2; exit 1; }
    fi
}
