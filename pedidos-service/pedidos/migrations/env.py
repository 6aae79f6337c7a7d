from pedidos.models import metadata
from veloz.migrate import run_migrations

run_migrations(metadata)
