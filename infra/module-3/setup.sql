-- Module 3: the database user the ticket drop function connects as.
--
-- Run once, AFTER `module-3 migrate` (the grants below name its tables), as
-- the master user, against the cluster endpoint (ClusterEndpoint output),
-- not the proxy, from a shell inside the VPC:
--
--   psql "host=CLUSTER_ENDPOINT port=5432 dbname=tickets user=postgres sslmode=require" \
--        -f setup.sql
--
-- with PGPASSWORD set to the password in the MasterSecretArn secret.
-- Running it again changes nothing. If you deployed with another DbUser
-- than ticket_app, replace ticket_app below with it.

\set ON_ERROR_STOP on

BEGIN;

-- A login role without a password: CREATE USER is CREATE ROLE ... LOGIN.
-- The DO block only makes a second run harmless.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ticket_app') THEN
        CREATE USER ticket_app;
    END IF;
END
$$;

-- rds_iam makes the database accept an IAM token as this user's password,
-- and nothing else: a role in rds_iam cannot log in with a password. Here
-- the token comes from RDS Proxy, signed with the proxy's role (end-to-end
-- IAM). Never grant rds_iam to the master user: it would lock out the
-- password that the secret, psql and `module-3 migrate` rely on.
GRANT rds_iam TO ticket_app;

-- Reach the database and its schema...
GRANT CONNECT ON DATABASE tickets TO ticket_app;
GRANT USAGE ON SCHEMA public TO ticket_app;

-- ...and exactly the statements the store sends (store.rs): the stock is
-- read and decremented, reservations and idempotency keys are read and
-- added. No DELETE, no DDL, and nothing on _sqlx_migrations: a leaked token
-- can book seats but cannot rewrite history or the schema. The tables
-- belong to the master user, who created them with `module-3 migrate`.
GRANT SELECT, UPDATE ON events TO ticket_app;
GRANT SELECT, INSERT ON reservations TO ticket_app;
GRANT SELECT, INSERT ON idempotency_keys TO ticket_app;

COMMIT;
