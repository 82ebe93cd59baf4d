#!/usr/bin/env bash
# First-start initialisation of the compose TimescaleDB volume: the service's
# own role and database, and the read-only login Grafana queries with: a
# member of the NOLOGIN group role emissions_reader, which migration 0006
# grants SELECT on the dashboards' tables only (never api_keys).
#
# The official image runs this once, as the postgres superuser, after its own
# 000_install_timescaledb.sh and 001_timescaledb_tune.sh, and never again for
# an initialised volume (change passwords later with ALTER ROLE, see
# docs/docker.md). The schema itself belongs to `emissions db upgrade`.
#
# The service role owns its database but is not a superuser; the timescaledb
# extension is created here because creating it needs a superuser.
set -Eeuo pipefail

# compose hands the passwords over as secret files (VAR_FILE=/run/secrets/...).
read_file_var() {
    local var="$1" file_var="${1}_FILE"
    if [[ -n "${!file_var:-}" ]]; then
        [[ -r "${!file_var}" ]] || { echo "$file_var: cannot read ${!file_var}" >&2; exit 1; }
        printf -v "$var" '%s' "$(<"${!file_var}")"
    fi
}
read_file_var EMISSIONS_DB_PASSWORD
read_file_var EMISSIONS_GRAFANA_DB_PASSWORD

: "${EMISSIONS_DB_NAME:?EMISSIONS_DB_NAME is not set}"
: "${EMISSIONS_DB_USER:?EMISSIONS_DB_USER is not set}"
: "${EMISSIONS_DB_PASSWORD:?EMISSIONS_DB_PASSWORD is not set}"
: "${EMISSIONS_GRAFANA_DB_USER:?EMISSIONS_GRAFANA_DB_USER is not set}"
: "${EMISSIONS_GRAFANA_DB_PASSWORD:?EMISSIONS_GRAFANA_DB_PASSWORD is not set}"

# Values travel as psql variables (:"ident" and :'literal' quote them safely),
# never spliced into the SQL text.
psql --no-psqlrc -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=db_name="$EMISSIONS_DB_NAME" \
    --set=app_user="$EMISSIONS_DB_USER" \
    --set=app_password="$EMISSIONS_DB_PASSWORD" \
    --set=ro_user="$EMISSIONS_GRAFANA_DB_USER" \
    --set=ro_password="$EMISSIONS_GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
CREATE ROLE emissions_reader NOLOGIN;
CREATE ROLE :"ro_user" LOGIN PASSWORD :'ro_password' CONNECTION LIMIT 20 IN ROLE emissions_reader;
ALTER ROLE :"ro_user" SET default_transaction_read_only = on;
ALTER ROLE :"ro_user" SET statement_timeout = '60s';

CREATE DATABASE :"db_name" OWNER :"app_user";
REVOKE ALL ON DATABASE :"db_name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db_name" TO :"app_user";
GRANT CONNECT ON DATABASE :"db_name" TO :"ro_user";

\connect :"db_name"
CREATE EXTENSION IF NOT EXISTS timescaledb;
ALTER SCHEMA public OWNER TO :"app_user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- Table grants (SELECT on what the dashboards read) come with the schema, from
-- migration 0006, run by the service role that owns the tables.
GRANT USAGE ON SCHEMA public TO emissions_reader;
SQL
