"""The database: engines and statements, migrations, keyset paging's query half, the idempotency
store."""
