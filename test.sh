#!/usr/bin/env bash
# Runs every test from a clean clone on Debian or Ubuntu: installs what the tests need and is missing, then `dotnet test`.
#   ./test.sh                         all tests
#   ./test.sh --filter Category!=Browser   any `dotnet test` arguments pass through
# Needs: the .NET 10 SDK. Installs (apt, as root or through sudo): Fashion-MNIST (the end-to-end accuracy tests train on
# it), binutils (readelf, for the native-fix test), Chromium (the dashboard's browser tests drive Debian's
# /usr/bin/chromium; nothing downloads a browser), Node.js with npm (the build bundles the dashboard), PostgreSQL's
# server binaries (tests/Api.Tests/Postgres starts its own server with initdb and pg_ctl on a loopback port),
# redis-server (tests/Api.Tests/Redis starts its own on a loopback port, nothing saved; the Debian package's own
# service is not needed), and python3-protobuf with python3-crcmod (tests/Api.Tests/Outputs/read_tfevents.py, the
# independent reader of the TensorBoard event files the service writes).
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v readelf >/dev/null || need+=(binutils)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
/usr/bin/python3 -c 'import google.protobuf, crcmod' 2>/dev/null || need+=(python3 python3-protobuf python3-crcmod)
if [ ${#need[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "test.sh: missing ${need[*]}; install them (apt-get install -y ${need[*]}) or run as root" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "test.sh: installing ${need[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

exec dotnet test "$@"
