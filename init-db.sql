-- One database per service on the shared PostgreSQL server (Docker Compose / a fresh server).
-- `make up` and the migration Job create them on their own when they are missing.
CREATE DATABASE estoque_db;
CREATE DATABASE pagamentos_db;
CREATE DATABASE pedidos_db;
