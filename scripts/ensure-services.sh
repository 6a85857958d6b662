#!/usr/bin/env bash
# Make sure the services the tests (or the demo, or the benchmark) need are there: start
# PostgreSQL if it is down, install it, Prometheus or wrk (the benchmark's load generator)
# with apt-get if missing. `--optional` never fails.
set -uo pipefail
optional=0
want=()
for arg in "$@"; do
  case "$arg" in
    --optional) optional=1 ;;
    *) want+=("$arg") ;;
  esac
done

fail() {
  echo "ensure-services: $*" >&2
  [ "$optional" = 1 ] && exit 0
  exit 1
}

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=0
apt_install() {
  can_apt || return 1
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

ensure_postgres() {
  pg_up && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "ensure-services: installing PostgreSQL" >&2
    apt_install postgresql || fail "PostgreSQL is missing and cannot be installed here"
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 60); do
    pg_up && break
    sleep 0.5
  done
  pg_up || fail "PostgreSQL did not come up on 127.0.0.1:5432"
  # The suite connects as postgres over TCP without a password (trust, as on the CI machine).
  local hba
  hba=$(ls /etc/postgresql/"$version"/main/pg_hba.conf 2>/dev/null)
  if [ -n "$hba" ] && ! psql -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\)\S\+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
  fi
  return 0
}

ensure_prometheus() {
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 && return 0
  echo "ensure-services: installing Prometheus (apt-get install --no-install-recommends prometheus)" >&2
  apt_install prometheus || fail "Prometheus is missing and cannot be installed here"
}

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  echo "ensure-services: installing wrk (apt-get install --no-install-recommends wrk)" >&2
  apt_install wrk || fail "wrk is missing and cannot be installed here"
}

for service in "${want[@]}"; do
  case "$service" in
    postgres) ensure_postgres ;;
    prometheus) ensure_prometheus ;;
    wrk) ensure_wrk ;;
    *) fail "unknown service $service" ;;
  esac
done
exit 0
