#!/bin/sh
# The official postgres image's contract on Debian's PostgreSQL, for the compose stand-in:
# POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres), POSTGRES_DB (default the
# user); on an empty data volume (PGDATA) initdb with that superuser, run
# /docker-entrypoint-initdb.d/*.sql and *.sh once, then serve. Arguments that start with "-"
# go to postgres, as in the official image; any other command runs as given.
set -eu
[ "${1#-}" = "$1" ] || set -- postgres "$@"
[ "$1" = postgres ] || exec "$@"

if [ "$(id -u)" = 0 ]; then
    # As in the official image: a fresh volume belongs to root; fix it, then drop to postgres.
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

initialise() {
    : "${POSTGRES_PASSWORD:?the postgres stand-in needs POSTGRES_PASSWORD, like the official image}"
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --encoding=UTF8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    # Only the socket while the init scripts run, as in the official image.
    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start >/dev/null
    if [ "$database" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            --command="CREATE DATABASE \"$database\"" >/dev/null
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) echo "postgres-entrypoint: running $script"
                   psql -v ON_ERROR_STOP=1 --username="$user" --dbname="$database" \
                       --file="$script" >/dev/null ;;
            *.sh) echo "postgres-entrypoint: running $script"
                  # shellcheck disable=SC1090
                  . "$script" ;;
            *) ;;
        esac
    done
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA for $user"
}

[ -s "$PGDATA/PG_VERSION" ] || initialise
exec "$@"
